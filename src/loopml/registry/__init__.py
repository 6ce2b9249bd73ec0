"""The model registry: stored models, their safe formats, and loading them back.

Public surface: :func:`load_model` (``load.py``), :func:`dump_model` and :func:`read_model`
(``formats.py``, the signed pickle envelope).
"""

from __future__ import annotations

from loopml.registry.formats import dump_model, read_model
from loopml.registry.load import MODEL_ARTIFACT, load_model

__all__ = ["MODEL_ARTIFACT", "dump_model", "load_model", "read_model"]
