"""Fairness by sensitive group: selection rate, TPR, FPR, and the gaps between groups.

Demographic-parity difference is the largest minus the smallest selection rate across
groups; equalized-odds difference is the larger of the TPR gap and the FPR gap (the
definitions of Fairlearn and of Hardt et al., 2016).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MIN_GROUP = 1


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> dict[str, Any]:
    """Return per-group rates and the parity gaps for binary labels (1 = positive)."""
    import numpy as np
    import pandas as pd

    table = pd.DataFrame({"y": np.asarray(y_true), "p": np.asarray(y_pred),
                          "g": groups.astype("string").fillna("<missing>").to_numpy()})
    per_group: dict[str, dict[str, float | int | None]] = {}
    for group, rows in table.groupby("g", sort=True):
        positives, negatives = rows[rows.y == 1], rows[rows.y == 0]
        per_group[str(group)] = {
            "count": len(rows),
            "selection_rate": float(rows.p.mean()),
            "tpr": float(positives.p.mean()) if len(positives) else None,
            "fpr": float(negatives.p.mean()) if len(negatives) else None,
        }

    def gap(key: str) -> float | None:
        values = [g[key] for g in per_group.values() if g[key] is not None]
        return float(max(values) - min(values)) if len(values) > 1 else None

    tpr_gap, fpr_gap = gap("tpr"), gap("fpr")
    odds = [v for v in (tpr_gap, fpr_gap) if v is not None]
    return {
        "groups": per_group,
        "demographic_parity_difference": gap("selection_rate"),
        "equalized_odds_difference": max(odds) if odds else None,
        "tpr_difference": tpr_gap,
        "fpr_difference": fpr_gap,
    }
