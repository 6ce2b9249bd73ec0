"""Data: ingest, dataset versions by content, contracts, validation, profiles, PII, splits.

Public surface: :class:`Catalog`, :func:`resolve_source`, :class:`SplitSpec`.
"""

from __future__ import annotations

from loopml.data.catalog import AddResult, Catalog
from loopml.data.sources import Source, resolve_source
from loopml.data.splits import SplitSpec

__all__ = ["AddResult", "Catalog", "Source", "SplitSpec", "resolve_source"]
