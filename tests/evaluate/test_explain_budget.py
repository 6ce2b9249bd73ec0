"""Permutation importance within a time bound: fewer rows and repeats, and the result says so."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from loopml.evaluate.explain import permutation_importance


def test_a_time_bound_cuts_rows_and_says_so_but_measures_every_column():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1000, 5)), columns=[f"c{i}" for i in range(5)])
    y = (frame["c2"] > 0).astype(int).to_numpy()

    def predictions(rows: pd.DataFrame):
        time.sleep(0.05)  # a slow model: 50 ms a call, whatever the rows
        proba = 1 / (1 + np.exp(-4 * rows["c2"].to_numpy()))
        return (proba >= 0.5).astype(int), np.column_stack([1 - proba, proba])

    measured: dict = {}
    bounded = permutation_importance(frame, y, list(frame.columns), predictions=predictions,
                                     metric="roc_auc", labels=[0, 1], seconds=0.2,
                                     measured=measured)
    assert 100 <= measured["sample_rows"] < 1000 and "sampled_for_time" in measured
    assert set(bounded) == set(frame.columns)
    assert max(bounded, key=bounded.get) == "c2"  # still finds what drives the model

    free: dict = {}
    permutation_importance(frame, y, list(frame.columns), predictions=predictions,
                           metric="roc_auc", labels=[0, 1], measured=free)
    assert free == {"sample_rows": 1000, "repeats": 3}
