"""XGBoost gradient boosting (the CPU build, package ``xgboost-cpu``)."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params

CAP = 2000  # trees at most; early stopping on the validation rows finds how many


class XGBoost:
    name = "xgboost"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"n_estimators": CAP, "learning_rate": 0.05, "max_depth": 6,
                "min_child_weight": 1.0, "subsample": 0.9, "colsample_bytree": 0.9,
                "reg_lambda": 1.0}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "xgboost"
        return {
            "n_estimators": CAP,
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

    def fit_early_stopping(self, estimator: Any, X: Any, y: Any, X_valid: Any,
                           y_valid: Any) -> Params:
        """Return ``{"n_estimators": best}`` after fitting ``estimator`` up to its best tree.

        The objective's default metric (log loss, multi-class log loss, RMSE) is watched on
        the validation rows; ``predict`` and ``predict_proba`` then use the best iteration, and
        the estimator's parameters are those of the refit (``n_estimators`` = best).
        """
        from loopml.train.trainers.early_stopping import ROUNDS, known_rows

        valid = known_rows(estimator, X, y, X_valid, y_valid)
        if valid is None:
            estimator.fit(X, y, verbose=False)
            return {"n_estimators": estimator.n_estimators}
        # a constructor argument since xgboost 2; it leaves the trees after the best one in
        # the booster, and predict stops at best_iteration by itself
        before = estimator.get_params()["early_stopping_rounds"]
        estimator.set_params(early_stopping_rounds=ROUNDS)
        estimator.fit(X, y, eval_set=[valid], verbose=False)
        best = int(estimator.best_iteration) + 1  # best_iteration is 0-based
        # its parameters describe the model it is: a clone fits as the refit does
        estimator.set_params(n_estimators=best, early_stopping_rounds=before)
        return {"n_estimators": best}


def make(name: str) -> XGBoost:
    return XGBoost()
