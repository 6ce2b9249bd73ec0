"""Content-addressed artifact store on a local folder or any fsspec filesystem."""

from __future__ import annotations

from loopml.artifacts.store import ArtifactStore, StoredBlob

__all__ = ["ArtifactStore", "StoredBlob"]
