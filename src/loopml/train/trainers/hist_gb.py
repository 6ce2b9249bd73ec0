"""Histogram gradient boosting (scikit-learn)."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class HistGradientBoosting:
    name = "hist_gradient_boosting"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6, "max_iter": 200}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "hist_gradient_boosting"
        return {
            "learning_rate": trial.suggest_float(f"{p}.learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int(f"{p}.max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int(f"{p}.min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float(f"{p}.l2_regularization", 1e-6, 10, log=True),
            "max_iter": trial.suggest_int(f"{p}.max_iter", 100, 500, log=True),
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if task == "regression" else \
            HistGradientBoostingClassifier
        return cls(random_state=seed, early_stopping=True, validation_fraction=0.1,
                   n_iter_no_change=20, **params)


def make(name: str) -> HistGradientBoosting:
    return HistGradientBoosting()
