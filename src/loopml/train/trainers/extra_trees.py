"""Extremely randomised trees (scikit-learn): random split points, every row in every tree."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class ExtraTrees:
    name = "extra_trees"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        # Geurts et al. (2006): all features for regression; fewer help classification.
        # The leaf cap bounds a tree grown on every row of a large set (as AutoGluon does);
        # below 15,000 rows it never binds.
        return {"n_estimators": 300, "max_features": 1.0 if task == "regression" else 0.5,
                "min_samples_leaf": 1, "max_leaf_nodes": 15000}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "extra_trees"
        return {
            "n_estimators": trial.suggest_int(f"{p}.n_estimators", 100, 500, log=True),
            "max_features": trial.suggest_float(f"{p}.max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int(f"{p}.min_samples_leaf", 1, 20, log=True),
            "max_leaf_nodes": 15000,
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        cls = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
        return cls(random_state=seed, n_jobs=n_jobs, **params)


def make(name: str) -> ExtraTrees:
    return ExtraTrees()
