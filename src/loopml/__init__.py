"""loopml: the whole machine-learning lifecycle in one closed loop.

Public surface (imported lazily, so ``import loopml`` stays fast):

- :func:`start_run`, :func:`active_run` — track a run with the ``with`` statement
- :class:`TrackingClient` — the same, with explicit stores
- :class:`Workspace` — where the metadata store and the artifact store live
- :func:`add_data` — add a data file as a dataset version (``loopml data add``)
- :func:`train` — train a project from its loopml.yaml (``loopml train``)
- :func:`load_model` — a stored model back, verified, with ``predict``/``predict_proba``
- :mod:`loopml.errors` — the exception tree
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["TrackingClient", "Workspace", "active_run", "add_data", "errors", "load_model",
           "start_run", "train"]

_LAZY = {
    "start_run": "loopml.tracking",
    "active_run": "loopml.tracking",
    "TrackingClient": "loopml.tracking",
    "Workspace": "loopml.workspace",
    "errors": "loopml.errors",
    "load_model": "loopml.registry.load",
    "add_data": "loopml.api",
    "train": "loopml.train",  # the package is callable: loopml.train("loopml.yaml")
}

if TYPE_CHECKING:
    from loopml import errors
    from loopml.api import add_data, train
    from loopml.registry.load import load_model
    from loopml.tracking import TrackingClient, active_run, start_run
    from loopml.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    return module if name in ("errors", "train") else getattr(module, name)
