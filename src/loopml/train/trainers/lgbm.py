"""LightGBM gradient boosting."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class LightGBM:
    name = "lightgbm"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31,
                "min_child_samples": 20, "subsample": 0.9, "subsample_freq": 1,
                "colsample_bytree": 0.9, "reg_lambda": 1e-3}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "lightgbm"
        return {
            "n_estimators": trial.suggest_int(f"{p}.n_estimators", 50, 1000, log=True),
            "learning_rate": trial.suggest_float(f"{p}.learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int(f"{p}.num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int(f"{p}.min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float(f"{p}.subsample", 0.5, 1.0),
            "subsample_freq": 1,
            "colsample_bytree": trial.suggest_float(f"{p}.colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float(f"{p}.reg_lambda", 1e-6, 10, log=True),
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        import lightgbm

        cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
        # deterministic + a fixed histogram layout: same data and seed, same model
        return cls(random_state=seed, n_jobs=n_jobs, verbose=-1, deterministic=True,
                   force_row_wise=True, **params)


def make(name: str) -> LightGBM:
    return LightGBM()
