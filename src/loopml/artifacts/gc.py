"""What the artifact folder holds on disk, for `loopml gc`: stored objects and temp files.

Only a local folder can be swept: an object store has no cheap listing with dates here,
and its temp objects have no lock to tell a live write from a dead one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from loopml.artifacts.backends import LocalBackend, is_locked
from loopml.artifacts.store import ArtifactStore
from loopml.errors import InvalidInput

__all__ = ["OnDisk", "is_locked", "stored_objects", "temp_files"]


class OnDisk(NamedTuple):
    """A file of the artifact folder: its path, size and last change (Unix time)."""

    path: Path
    size: int
    mtime: float
    sha256: str | None = None  # the address, for a stored object


def _local_root(artifacts: ArtifactStore) -> Path:
    backend = artifacts._backend
    if not isinstance(backend, LocalBackend):
        raise InvalidInput(
            f"gc works on a local artifact folder, not {artifacts.uri!r}: use the storage "
            "provider's lifecycle rules for object stores"
        )
    return Path(backend.root)


def stored_objects(artifacts: ArtifactStore) -> Iterator[OnDisk]:
    """Yield every object under ``objects/ab/cdef…``, with the address it is stored under."""
    objects = _local_root(artifacts) / "objects"
    if not objects.is_dir():
        return
    for shard in sorted(objects.iterdir()):
        if not shard.is_dir() or shard.is_symlink() or len(shard.name) != 2:
            continue
        for path in sorted(shard.iterdir()):
            address = shard.name + path.name
            if len(address) != 64 or not path.is_file() or path.is_symlink():
                continue
            info = path.stat()
            yield OnDisk(path, info.st_size, info.st_mtime, address)


def temp_files(artifacts: ArtifactStore) -> Iterator[OnDisk]:
    """Yield the ``tmp/*.part`` files: writes in progress, or left by a dead writer."""
    tmp = _local_root(artifacts) / "tmp"
    if not tmp.is_dir():
        return
    for path in sorted(tmp.iterdir()):
        if path.name.endswith(".part") and path.is_file() and not path.is_symlink():
            info = path.stat()
            yield OnDisk(path, info.st_size, info.st_mtime)


def remove(path: Path) -> bool:
    """Delete one file; return False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
