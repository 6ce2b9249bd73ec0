"""Trainers: one module per model family, all behind the same small protocol.

A trainer says which tasks it handles, whether it is tree-based (trees need no scaling
and take ordinal-encoded categories), how to sample its hyperparameters in an Optuna
trial, and how to build a scikit-learn-compatible estimator from them. Adding a trainer
is one module here and one line in ``_MODULES``; config validation reads the names from
:func:`trainer_names`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import optuna

Params = dict[str, Any]

_MODULES = {
    "linear": "loopml.train.trainers.linear",
    "logistic": "loopml.train.trainers.linear",
    "random_forest": "loopml.train.trainers.forest",
    "extra_trees": "loopml.train.trainers.extra_trees",
    "hist_gradient_boosting": "loopml.train.trainers.hist_gb",
    "lightgbm": "loopml.train.trainers.lgbm",
    "xgboost": "loopml.train.trainers.xgb",
    "mlp": "loopml.train.trainers.torch_mlp",
}


def trainer_names() -> tuple[str, ...]:
    """Return the name of every trainer loopml knows (some need an optional extra).

    >>> "lightgbm" in trainer_names()
    True
    """
    return tuple(_MODULES)


class Trainer(Protocol):
    name: str
    tasks: tuple[str, ...]
    tree_based: bool

    def defaults(self, task: str) -> Params:
        """Parameters that are good without tuning; the first trial uses them."""
        ...

    def suggest(self, trial: optuna.Trial, task: str) -> Params:
        """Sample parameters for one trial."""
        ...

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        """Return an unfitted estimator with the scikit-learn contract."""
        ...


def get_trainer(name: str) -> Trainer:
    """Return the trainer called ``name``.

    >>> get_trainer("random_forest").tree_based
    True
    """
    if name not in _MODULES:
        raise InvalidInput(f"unknown trainer {name!r}; choose from {', '.join(_MODULES)}")
    try:
        module = import_module(_MODULES[name])
    except ModuleNotFoundError as exc:
        extra = "torch" if name == "mlp" else name
        raise InvalidInput(f"trainer {name!r} needs {exc.name!r}: pip install "
                           f"'loopml[{extra}]'") from exc
    return module.make(name)


def suggest_from_space(trial: optuna.Trial, prefix: str, space: dict[str, Any]) -> Params:
    """Sample every parameter of a user-given space (loopml.yaml train.search_space)."""
    params: Params = {}
    for key, spec in space.items():
        label = f"{prefix}.{key}"
        if spec.choices is not None:
            params[key] = trial.suggest_categorical(label, spec.choices)
        elif spec.int:
            params[key] = trial.suggest_int(label, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[key] = trial.suggest_float(label, spec.low, spec.high, log=spec.log)
    return params
