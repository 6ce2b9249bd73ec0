"""Histogram gradient boosting (scikit-learn)."""

from __future__ import annotations

from typing import Any

from loopml.train.trainers import Params

CAP = 1000  # iterations at most; early stopping on the validation rows finds how many


class HistGradientBoosting:
    name = "hist_gradient_boosting"
    tasks = ("binary", "multiclass", "regression")
    tree_based = True

    def defaults(self, task: str) -> Params:
        return {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6, "max_iter": CAP}

    def suggest(self, trial: Any, task: str) -> Params:
        p = "hist_gradient_boosting"
        return {
            "learning_rate": trial.suggest_float(f"{p}.learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int(f"{p}.max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int(f"{p}.min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float(f"{p}.l2_regularization", 1e-6, 10, log=True),
            "max_iter": CAP,
        }

    def build(self, params: Params, *, task: str, seed: int, n_jobs: int = 1) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if task == "regression" else \
            HistGradientBoostingClassifier
        # no internal split: the refit sees every row, its iteration count found on the folds
        return cls(random_state=seed, early_stopping=False, **params)

    def fit_early_stopping(self, estimator: Any, X: Any, y: Any, X_valid: Any,
                           y_valid: Any) -> Params:
        """Return ``{"max_iter": best}`` after fitting ``estimator`` up to its best iteration.

        The loss (log loss, squared error) is watched on the validation rows. scikit-learn
        keeps the iterations after the best one, so they are dropped: ``predict`` and
        ``predict_proba`` then answer as a model of ``best`` iterations fitted on X, y does
        (the same random draws: early stopping on given rows takes no split), and the
        estimator's parameters are that refit's (``max_iter`` = best, no early stopping).
        """
        import numpy as np

        from loopml.train.trainers.early_stopping import ROUNDS, known_rows

        valid = known_rows(estimator, X, y, X_valid, y_valid)
        if valid is None:
            estimator.fit(X, y)
            return {"max_iter": estimator.n_iter_}
        stopping = {"early_stopping": True, "scoring": "loss", "n_iter_no_change": ROUNDS}
        before = {key: estimator.get_params()[key] for key in stopping}
        estimator.set_params(**stopping)
        estimator.fit(X, y, X_val=valid[0], y_val=valid[1])
        # its parameters describe the model it is: a clone fits as the refit does
        estimator.set_params(**before)
        scores = np.asarray(estimator.validation_score_)  # [0]: before the first iteration
        best = int(np.argmax(scores[1:])) + 1
        if best < estimator.n_iter_:
            if hasattr(estimator, "_predictors"):
                estimator._predictors = estimator._predictors[:best]
                estimator.train_score_ = estimator.train_score_[:best + 1]
                estimator.validation_score_ = scores[:best + 1]
            else:  # a scikit-learn whose internals moved: fit again, as the refit will
                estimator.set_params(max_iter=best).fit(X, y)
        estimator.set_params(max_iter=best)
        return {"max_iter": best}


def make(name: str) -> HistGradientBoosting:
    return HistGradientBoosting()
