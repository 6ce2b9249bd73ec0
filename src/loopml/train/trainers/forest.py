"""Random forests (scikit-learn)."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class RandomForest:
    name = "random_forest"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"n_estimators": 300, "max_features": 0.5,
                "min_samples_leaf": 1}

    def suggest(self, trial: Any, task: str) -> Params:
        return {
            "n_estimators": trial.suggest_int("random_forest.n_estimators", 100, 500, log=True),
            "max_features": trial.suggest_float("random_forest.max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int("random_forest.min_samples_leaf", 1, 20,
                                                  log=True),
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
        return cls(random_state=seed, n_jobs=n_jobs, **params)


def make(name: str) -> RandomForest:
    return RandomForest()
