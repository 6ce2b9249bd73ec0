"""XGBoost gradient boosting (the CPU build, package ``xgboost-cpu``)."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params


class XGBoost:
    name = "xgboost"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6,
                "min_child_weight": 1.0, "subsample": 0.9, "colsample_bytree": 0.9,
                "reg_lambda": 1.0}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "xgboost"
        return {
            "n_estimators": trial.suggest_int(f"{p}.n_estimators", 50, 1000, log=True),
            "learning_rate": trial.suggest_float(f"{p}.learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int(f"{p}.max_depth", 2, 10),
            "min_child_weight": trial.suggest_float(f"{p}.min_child_weight", 0.5, 20, log=True),
            "subsample": trial.suggest_float(f"{p}.subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float(f"{p}.colsample_bytree", 0.4, 1.0),
            "reg_lambda": trial.suggest_float(f"{p}.reg_lambda", 1e-3, 10, log=True),
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        import xgboost

        cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
        return cls(random_state=seed, n_jobs=n_jobs, tree_method="hist", **params)


def make(name: str) -> XGBoost:
    return XGBoost()
