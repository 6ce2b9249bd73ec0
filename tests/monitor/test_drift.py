"""Drift verdicts: no false alarms on equal distributions, planted shifts found and named,
statistics equal to scipy's on the same samples, quality issues, compare on Parquet paths."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from loopml.monitor.drift import compare, window_drift, window_quality
from loopml.monitor.settings import DriftSettings, QualitySettings
from loopml.monitor.sketch import Reference, WindowSketch

CATS = np.array(["a", "b", "c", "d", "e", "f"])
P = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])


def many_columns(n: int, seed: int, *, shift: str | None = None) -> pd.DataFrame:
    """40 columns of several shapes: normal, skewed, integer, two-valued and categorical."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(30):
        shape = i % 5
        if shape == 0:
            values = rng.normal(i, 1 + i % 3, n)
        elif shape == 1:
            values = rng.lognormal(1, 0.8, n)
        elif shape == 2:
            values = rng.integers(0, 8, n).astype(float)  # few values: ties everywhere
        elif shape == 3:
            values = rng.exponential(2.0, n)
        else:
            values = (rng.random(n) < 0.3).astype(float)
        data[f"num{i:02d}"] = values
    for i in range(10):
        data[f"cat{i}"] = CATS[rng.choice(6, n, p=P)]
    frame = pd.DataFrame(data)
    if shift == "numeric":  # half a standard deviation
        frame["num05"] = frame["num05"] + 0.5 * (1 + 5 % 3)
    elif shift == "category":  # "a" loses 15 points of share to "f"
        q = np.array([0.20, 0.25, 0.15, 0.12, 0.08, 0.20])
        frame["cat3"] = CATS[rng.choice(6, n, p=q)]
    return frame


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_frame(many_columns(20_000, 100), pii={})


def _sketch(reference: Reference, frame: pd.DataFrame) -> WindowSketch:
    sketch = WindowSketch.empty(reference)
    sketch.update(pa.Table.from_pandas(frame, preserve_index=False), reference=reference)
    return sketch


@pytest.mark.parametrize("rows", [60, 250, 1000, 4000, 8000, 20_000])
def test_no_drift_between_samples_of_one_distribution(reference, rows):
    """No window drifts; effect sizes never flag a feature; tests rarely do (Holm: the chance
    that a window flags any of its 40 features is at most alpha, see the next test)."""
    settings = DriftSettings()
    large = rows >= settings.large_sample_rows
    flagged = []
    for seed in range(5):
        result = window_drift(reference, _sketch(reference, many_columns(rows, seed)), settings)
        assert result.monitored == 40 and not result.dataset_drift
        assert all(("large sample" in f.decided_by) == large for f in result.features)
        assert len(result.drifted) <= 1
        flagged += result.drifted
    assert len(flagged) <= (0 if large else 1), flagged


def test_false_alarm_rate_is_controlled(reference):
    """Over 100 windows of one distribution, Holm keeps windows with any alarm near alpha."""
    windows = 100
    alarms, rejected, tests = 0, 0, 0
    for seed in range(1000, 1000 + windows):
        result = window_drift(reference, _sketch(reference, many_columns(200, seed)))
        alarms += bool(result.drifted)
        raw = [f.p_value for f in result.features if f.p_value is not None]
        rejected += sum(p < 0.05 for p in raw)
        tests += len(raw)
    assert alarms / windows <= 0.08  # alpha 0.05 plus sampling error of 100 windows
    assert rejected / tests <= 0.06  # each test at or below its nominal level


@pytest.mark.parametrize("rows", [300, 1000, 20_000])
@pytest.mark.parametrize("shift,name", [("numeric", "num05"), ("category", "cat3")])
def test_a_planted_shift_is_found_and_named(reference, rows, shift, name):
    # seeds whose other 39 columns raise no false alarm (at alpha 0.05, one window in ~20 does)
    for seed in (10, 11, 12):
        frame = many_columns(rows, seed, shift=shift)
        result = window_drift(reference, _sketch(reference, frame), DriftSettings())
        assert result.drifted == [name], (seed, result.rule)
        feature = next(f for f in result.features if f.name == name)
        assert feature.drifted and feature.monitored
        assert ("large sample" in feature.decided_by) == (rows >= 5000)
        assert not result.dataset_drift  # 1 of 40 < share 0.3
        json.dumps(result.to_json(), allow_nan=False)


def test_statistics_equal_scipy_on_the_same_samples():
    """With few distinct values, every bin holds one value: the window statistics are exact."""
    rng = np.random.default_rng(8)
    ref_frame = pd.DataFrame({"k": rng.integers(0, 10, 3000).astype(float),
                              "c": CATS[rng.choice(6, 3000, p=P)]})
    cur_frame = pd.DataFrame({"k": rng.integers(1, 10, 700).astype(float),
                              "c": CATS[rng.choice(6, 700, p=P[::-1])]})
    ref = Reference.from_frame(ref_frame, pii={})
    result = window_drift(ref, _sketch(ref, cur_frame), DriftSettings(correction="none"))
    k, c = result.features
    a, b = ref_frame["k"].to_numpy(), cur_frame["k"].to_numpy()
    expected = sps.ks_2samp(a, b, method="asymp")
    assert (k.test, k.rows, k.ref_rows) == ("ks", 700, 3000)
    assert k.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert k.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert k.p_adjusted == k.p_value
    assert k.wasserstein_norm == pytest.approx(sps.wasserstein_distance(a, b) / a.std(ddof=1),
                                               rel=1e-12)
    table = pd.crosstab(np.r_[np.zeros(3000), np.ones(700)],
                        np.r_[ref_frame["c"], cur_frame["c"]]).to_numpy()
    chi = sps.chi2_contingency(table, correction=False)
    assert c.test == "chi2" and c.statistic == pytest.approx(chi.statistic, rel=1e-12)
    assert c.p_value == pytest.approx(chi.pvalue, rel=1e-12)
    assert c.js_distance == pytest.approx(jensenshannon(table[0], table[1], base=2), rel=1e-12)
    shares = np.maximum(table / table.sum(axis=1, keepdims=True), 1e-4)
    psi = np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0]))
    assert c.psi == pytest.approx(psi, rel=1e-12)
    assert result.drifted == ["k", "c"] and result.dataset_drift


def test_few_rows_give_no_verdict(reference):
    result = window_drift(reference, _sketch(reference, many_columns(30, 1, shift="numeric")),
                          DriftSettings())
    assert result.monitored == 0 and not result.dataset_drift and result.drifted == []
    assert all(not f.monitored and "min_rows" in f.note for f in result.features)
    assert result.rule.startswith("no verdict")


def test_share_of_drifted_features_decides_the_window():
    rng = np.random.default_rng(3)
    ref = Reference.from_frame(pd.DataFrame({f"x{i}": rng.normal(size=2000) for i in range(4)}))
    current = pd.DataFrame({f"x{i}": rng.normal(1.0 if i < 2 else 0.0, 1, 500)
                            for i in range(4)})
    result = window_drift(ref, _sketch(ref, current), DriftSettings(share=0.5))
    assert result.drifted == ["x0", "x1"] and result.share == 0.5 and result.dataset_drift
    assert "2 of 4 features drifted (share 0.50 >= 0.5)" in result.rule


def test_prediction_drift_uses_the_same_machinery():
    rng = np.random.default_rng(4)
    scores = pd.DataFrame({"p": rng.beta(2, 5, 5000)})
    output = dataclasses.replace(Reference.from_frame(scores).features["p"], name="prediction")
    ref = dataclasses.replace(Reference.from_frame(pd.DataFrame({"x": rng.normal(size=5000)})),
                              prediction=output)
    for shifted, drifted in ((False, False), (True, True)):
        sketch = WindowSketch.empty(ref)
        p = rng.beta(5, 2, 800) if shifted else rng.beta(2, 5, 800)
        sketch.update(pa.table({"x": rng.normal(size=800)}), reference=ref,
                      prediction=pa.array(p))
        result = window_drift(ref, sketch, DriftSettings())
        assert result.prediction.drifted is drifted and result.prediction.test == "ks"
        assert result.drifted == []  # the output is not a feature: not in the share
        again = WindowSketch.from_json(json.loads(json.dumps(sketch.to_json())))
        assert window_drift(ref, again).prediction == result.prediction


def test_quality_issues_name_the_column_and_the_threshold():
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"age": rng.integers(18, 90, 1000).astype(float),
                          "city": rng.choice(["Paris", "Lyon"], 1000)})
    ref = Reference.from_frame(train, pii={})
    ref = dataclasses.replace(ref, features={
        "age": dataclasses.replace(ref.features["age"], low=18.0, high=89.0),
        "city": ref.features["city"]})
    window = pd.DataFrame({"age": rng.integers(18, 90, 200).astype(float),
                           "city": rng.choice(["Paris", "Lyon"], 200)})
    window.loc[:29, "age"] = np.nan  # +15 % missing
    window.loc[30:39, "age"] = 150.0  # 10 out of range
    window.loc[40:49, "city"] = "Berlin"  # 10 unseen
    window.loc[50:54, "city"] = None  # 5 values not readable as text: null and counted
    sketch = WindowSketch.empty(ref)
    sketch.update(pa.Table.from_pandas(window, preserve_index=False), reference=ref,
                  invalid={"city": 5})
    quality = window_quality(ref, sketch, QualitySettings())
    age, city = quality.columns
    assert age["missing_share"] == pytest.approx(0.15) and age["ref_missing_share"] == 0
    assert age["out_of_range_share"] == pytest.approx(10 / 170)
    assert city["unseen_share"] == pytest.approx(10 / 195)
    assert city["unseen_top"] == [["Berlin", 10]] and city["missing_share"] == 0
    assert city["invalid_share"] == pytest.approx(5 / 200)
    assert len(quality.issues) == 4
    assert quality.issues[0].startswith("age: missing share 0.150")
    assert "outside the contract's range [18, 89]" in quality.issues[1]
    assert quality.issues[2].startswith("city: 0.051 of values are categories")
    assert "contract violations" in quality.issues[3]
    json.dumps(quality.to_json(), allow_nan=False)
    clean = WindowSketch.empty(ref)
    clean.update(pa.Table.from_pandas(train.iloc[:300], preserve_index=False), reference=ref)
    assert window_quality(ref, clean).issues == []


def test_compare_on_parquet_paths_equals_compare_on_frames(tmp_path):
    columns = ["num00", "num01", "num02", "num04", "cat0", "cat3"]
    ref_frame = many_columns(3000, 1)[columns]
    cur_frame = many_columns(2000, 2, shift="category")[columns]
    pq.write_table(pa.Table.from_pandas(ref_frame, preserve_index=False), tmp_path / "r.parquet")
    pq.write_table(pa.Table.from_pandas(cur_frame, preserve_index=False), tmp_path / "c.parquet")
    on_paths = compare(tmp_path / "r.parquet", str(tmp_path / "c.parquet"))
    on_frames = compare(ref_frame, pa.Table.from_pandas(cur_frame))
    assert on_paths.to_json() == on_frames.to_json()
    assert on_paths.drifted == ["cat3"]
    only = compare(ref_frame, cur_frame, columns=["num00", "cat3"])
    assert [f.name for f in only.features] == ["num00", "cat3"]


def test_multiclass_prediction_drift_on_labels():
    from loopml.monitor.sketch import FeatureRef

    labels = ["cat", "dog", "fish"]
    output = FeatureRef(name="prediction", kind="categorical", rows=3000, missing_share=0.0,
                        categories=labels, category_counts=[1500.0, 1000.0, 500.0, 0.0],
                        allowed=labels)
    ref = dataclasses.replace(Reference.from_frame(pd.DataFrame({"x": np.arange(100.0)})),
                              prediction=output)
    rng = np.random.default_rng(0)
    for p, drifted in (([0.5, 0.33, 0.17], False), ([0.2, 0.3, 0.5], True)):
        sketch = WindowSketch.empty(ref)
        sketch.update(pa.table({"x": np.arange(100.0)}), reference=ref,
                      prediction=pa.array(rng.choice(labels, 100, p=p)))
        result = window_drift(ref, sketch).prediction
        assert result.test == "chi2" and result.drifted is drifted and result.rows == 100


def test_signature_column_missing_from_the_profile_is_reported_not_monitored():
    profile = {"version": 2, "num_rows": 10, "columns": {}}
    ref = Reference.from_profile(profile, signature={"inputs": [{"name": "x", "kind": "number"}]},
                                 source="p")
    sketch = WindowSketch.empty(ref)
    sketch.update(pa.table({"x": np.arange(100.0)}), reference=ref)
    result = window_drift(ref, sketch)
    assert result.monitored == 0 and "no reference" in result.features[0].note
