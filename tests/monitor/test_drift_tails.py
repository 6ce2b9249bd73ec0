"""Heavy tails in large windows: the effect size must not read tail noise as drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as sps

from loopml.monitor.drift import compare


def _frame(seed: int, *, shift: float = 0.0, n: int = 200_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"pareto": rng.pareto(2.5, n), "student_t3": rng.standard_t(3, n),
                         "lognormal": rng.lognormal(0, 1.5, n),
                         "normal": rng.normal(shift, 1, n)})


def test_heavy_tails_of_one_distribution_do_not_drift_and_a_real_shift_does():
    reference, current = _frame(1), _frame(2, shift=0.25)
    result = compare(reference, current)
    assert result.drifted == ["normal"]
    by_name = {f.name: f for f in result.features}
    for name in ("pareto", "student_t3", "lognormal"):
        exact = sps.wasserstein_distance(reference[name], current[name]) / reference[name].std()
        assert by_name[name].wasserstein_norm < 0.02 and exact < 0.02
    exact = sps.wasserstein_distance(reference["normal"], current["normal"])
    assert abs(by_name["normal"].wasserstein_norm - exact) < 0.02  # close to the exact value


def test_a_personal_data_column_is_never_read_so_never_a_quality_issue():
    import pyarrow as pa

    from loopml.monitor.drift import window_quality
    from loopml.monitor.sketch import Reference, WindowSketch

    frame = pd.DataFrame({"age": np.arange(200.0), "email": [f"p{i}@x.org" for i in range(200)]})
    reference = Reference.from_frame(frame, pii={"email": "email"})
    sketch = WindowSketch.empty(reference)
    sketch.update(pa.table({"age": np.arange(100.0)}), reference=reference)  # email never parsed
    quality = window_quality(reference, sketch)
    assert quality.issues == [] and [c["name"] for c in quality.columns] == ["age"]


def test_a_binary_model_that_logged_no_probabilities_gets_no_interval():
    from loopml.monitor.performance import realised_interval, realised_metrics

    args = ("binary", [0, 1], [0, 1] * 100, ["0", "1"] * 100, None)
    assert realised_interval(*args, metric="roc_auc") is None
    assert realised_interval(*args, metric="accuracy") is not None
    assert realised_metrics(*args)["accuracy"] == 1.0
