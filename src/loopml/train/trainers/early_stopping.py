"""Early stopping on a fold's validation rows, shared by the boosted-tree trainers.

A booster's ``fit_early_stopping`` grows trees up to its cap and stops once its objective's
own loss (log loss, multi-class log loss, squared error) on the validation rows has not
improved for :data:`ROUNDS` rounds; the tree count it found is what the refit on all rows uses.
"""

from __future__ import annotations

from typing import Any

ROUNDS = 50  # rounds without improvement on the validation rows before a booster stops


def known_rows(estimator: Any, X: Any, y: Any, X_valid: Any, y_valid: Any
               ) -> tuple[Any, Any] | None:
    """Return the validation rows a booster can score, or None when none is left.

    A classifier learns the classes of its training rows only; a validation row of another
    class would make the library refuse the validation set, so that row is left out (a fold
    may lack a rare class). A regressor keeps every row.

    >>> import numpy as np
    >>> class Classifier:
    ...     def predict_proba(self, X): ...
    >>> X_kept, y_kept = known_rows(Classifier(), None, np.array([0, 1]),
    ...                             np.arange(6).reshape(3, 2), np.array([1, 2, 0]))
    >>> X_kept.tolist(), y_kept.tolist()
    ([[0, 1], [4, 5]], [1, 0])
    """
    import numpy as np

    y_valid = np.asarray(y_valid)
    if not hasattr(estimator, "predict_proba"):
        return (X_valid, y_valid) if len(y_valid) else None
    keep = np.flatnonzero(np.isin(y_valid, np.unique(np.asarray(y))))
    if len(keep) == 0:
        return None
    if len(keep) == len(y_valid):
        return X_valid, y_valid
    rows = X_valid.iloc[keep] if hasattr(X_valid, "iloc") else X_valid[keep]
    return rows, y_valid[keep]
