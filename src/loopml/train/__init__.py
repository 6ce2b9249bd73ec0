"""Train, search and evaluate: from loopml.yaml to an evaluated model with a model card.

Public surface: :func:`train_project` (``runner.py``), :class:`TrainedModel` (``model.py``),
the trainer protocol and registry (``trainers/``).

``loopml.train`` is both this package and the verb ``loopml.train("loopml.yaml")``: once
a submodule is imported, Python binds the package to the ``train`` attribute of
``loopml``, so the package itself answers the call (see :func:`loopml.api.train`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _TrainModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from loopml.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _TrainModule
