"""LightGBM gradient boosting."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params

CAP = 2000  # trees at most; early stopping on the validation rows finds how many


class LightGBM:
    name = "lightgbm"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"n_estimators": CAP, "learning_rate": 0.05, "num_leaves": 31,
                "min_child_samples": 20, "subsample": 0.9, "subsample_freq": 1,
                "colsample_bytree": 0.9, "reg_lambda": 1e-3}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "lightgbm"
        return {
            "n_estimators": CAP,
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

    def fit_early_stopping(self, estimator: Any, X: Any, y: Any, X_valid: Any,
                           y_valid: Any) -> Params:
        """Return ``{"n_estimators": best}`` after fitting ``estimator`` up to its best tree.

        The objective's own metric (binary / multi-class log loss, l2) is watched on the
        validation rows; ``predict`` and ``predict_proba`` then use the best iteration, and
        the estimator's parameters are those of the refit (``n_estimators`` = best).
        """
        import inspect

        import lightgbm

        from loopml.train.trainers.early_stopping import ROUNDS, known_rows

        valid = known_rows(estimator, X, y, X_valid, y_valid)
        if valid is None:
            estimator.fit(X, y)
            return {"n_estimators": estimator.n_estimators}
        # lightgbm 4.7 renamed eval_set to eval_X / eval_y (the old name warns)
        rows = {"eval_X": valid[0], "eval_y": valid[1]} if "eval_X" in \
            inspect.signature(estimator.fit).parameters else {"eval_set": [valid]}
        estimator.fit(X, y, **rows, callbacks=[
            lightgbm.early_stopping(ROUNDS, first_metric_only=True, verbose=False)])
        # best_iteration_ counts trees (1-based); 0 would mean no validation was kept
        best = max(1, int(estimator.best_iteration_ or estimator.n_estimators))
        estimator.set_params(n_estimators=best)  # its parameters describe the model it is
        return {"n_estimators": best}


def make(name: str) -> LightGBM:
    return LightGBM()
