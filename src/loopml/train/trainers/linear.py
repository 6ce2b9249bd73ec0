"""Linear models: logistic regression for classes, ridge regression for numbers."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class Linear:
    tree_based = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks = ("binary", "multiclass") if name == "logistic" else \
            ("binary", "multiclass", "regression")

    def defaults(self, task: str) -> Params:
        return {"C": 1.0} if task != "regression" else {"alpha": 1.0}

    def suggest(self, trial: Any, task: str) -> Params:
        if task == "regression":
            return {"alpha": trial.suggest_float(f"{self.name}.alpha", 1e-3, 1e3, log=True)}
        return {"C": trial.suggest_float(f"{self.name}.C", 1e-3, 1e2, log=True)}

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        if task == "regression":
            from sklearn.linear_model import Ridge

            return Ridge(random_state=seed, **params)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000, random_state=seed, **params)


def make(name: str) -> Linear:
    return Linear(name)
