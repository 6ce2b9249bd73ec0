"""The same-rows comparison: rows neither model trained on, and the paired bootstrap (vs scipy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopml.errors import InvalidInput
from loopml.registry.compare import (
    _resample_counts,
    comparison_rows,
    paired_bootstrap,
)

# -- comparison_rows ----------------------------------------------------------------------------


def test_rows_the_champion_trained_on_are_removed_by_content():
    test = pd.DataFrame({"x": [1, 2, 3, 4, 4], "city": ["a", "b", "c", "d", "d"],
                         "y": [0, 1, 0, 1, 1]}, index=[10, 11, 12, 13, 14])
    # The champion's training rows: another dtype (float), column order and an extra column;
    # (3, "c", 1) differs from the test row (3, "c", 0) by its target only, so it stays.
    train = pd.DataFrame({"y": [1, 1, 1, 0], "extra": [9, 9, 9, 9],
                          "x": [2.0, 4.0, 3.0, 99.0], "city": ["b", "d", "c", "z"]})
    rows, note = comparison_rows(test, train, columns=["x", "city", "y"])
    assert rows.index.tolist() == [10, 12]  # both copies of (4, "d", 1) go
    assert rows.equals(test.loc[[10, 12]])
    assert note == ("2 of the challenger's 5 test rows; 3 removed because the champion "
                    "trained on them (matched on 3 columns)")


def test_no_overlap_and_unknown_champion_rows_keep_everything():
    test = pd.DataFrame({"x": [1.5, None], "y": ["a", "b"]})
    train = pd.DataFrame({"x": [1.5, None], "y": ["b", "a"]})
    rows, note = comparison_rows(test, train, columns=["x", "y"])
    assert len(rows) == 2 and "none of them are among the champion's training rows" in note
    rows, note = comparison_rows(test, None, columns=["x", "y"])
    assert len(rows) == 2 and "unknown" in note


def test_missing_values_match_missing_values():
    test = pd.DataFrame({"x": [np.nan, 1.0], "s": [None, "q"], "y": [1, 0]})
    train = pd.DataFrame({"x": [np.nan], "s": [None], "y": [1]})
    rows, _ = comparison_rows(test, train, columns=["x", "s", "y"])
    assert rows["x"].tolist() == [1.0]


def test_a_column_missing_from_either_side_is_named():
    test = pd.DataFrame({"x": [1], "y": [0]})
    with pytest.raises(InvalidInput, match=r"champion's training rows lack column\(s\) 'y'"):
        comparison_rows(test, pd.DataFrame({"x": [1]}), columns=["x", "y"])
    with pytest.raises(InvalidInput, match=r"challenger's test rows lack column\(s\) 'z'"):
        comparison_rows(test, test, columns=["x", "z"])


# -- resampling ---------------------------------------------------------------------------------

def test_resample_counts_are_draws_with_replacement():
    counts = _resample_counts(np.random.default_rng(0), 50, 400)
    assert counts.shape == (400, 50) and (counts.sum(axis=1) == 50).all()
    assert counts.mean() == pytest.approx(1.0)  # each row drawn once per resample on average


# -- paired_bootstrap against scipy -------------------------------------------------------------

def _scipy_ci(y, a, b, statistic, *, n=2000, seed=0):
    result = stats.bootstrap((y, a, b), statistic, paired=True, vectorized=False,
                             method="percentile", n_resamples=n, confidence_level=0.95,
                             rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


def _close(ours, theirs):
    # Two independent Monte Carlo runs of 2,000 resamples: endpoints agree to a few % of width.
    width = theirs[1] - theirs[0]
    assert width > 0
    assert abs(ours[0] - theirs[0]) < 0.12 * width
    assert abs(ours[1] - theirs[1]) < 0.12 * width


def test_ci_of_an_rmse_difference_matches_scipy():
    rng = np.random.default_rng(3)
    y = rng.normal(0, 2, 300)
    a, b = y + rng.normal(0, 1.0, 300), y + rng.normal(0, 0.8, 300)

    def rmse(t, p):
        return np.sqrt(np.mean((t - p) ** 2))

    ours = paired_bootstrap(y, a, b, metric="rmse", task="regression", n=2000, seed=1)
    # lower is better: the delta is a - b
    theirs = _scipy_ci(y, a, b, lambda t, pa, pb: rmse(t, pa) - rmse(t, pb))
    _close(ours["ci"], theirs)
    assert ours["delta"] == pytest.approx(rmse(y, a) - rmse(y, b))
    assert ours["a"] == pytest.approx(rmse(y, a)) and ours["b"] == pytest.approx(rmse(y, b))
    assert ours["resamples"] == 2000 and ours["skipped"] == 0


def test_ci_of_a_roc_auc_difference_matches_scipy():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    a = np.clip(0.25 * y + 0.75 * rng.random(200), 0, 1)
    b = np.clip(0.35 * y + 0.65 * rng.random(200), 0, 1)
    ours = paired_bootstrap(y, (a >= 0.5).astype(int), (b >= 0.5).astype(int),
                            metric="roc_auc", task="binary", n=2000, seed=2,
                            proba_a=np.c_[1 - a, a], proba_b=np.c_[1 - b, b], labels=[0, 1])

    def auc(t, score_values):  # the rank-sum (Mann-Whitney) form; sklearn's is ~50x slower
        ranks = stats.rankdata(score_values)
        positives = t.sum()
        return (ranks[t == 1].sum() - positives * (positives + 1) / 2) / (
            positives * (len(t) - positives))

    assert auc(y, a) == pytest.approx(roc_auc_score(y, a))
    theirs = _scipy_ci(y, a, b, lambda t, pa, pb: auc(t, pb) - auc(t, pa))
    _close(ours["ci"], theirs)
    assert ours["delta"] == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a))
    assert 0 < ours["p_value"] < 0.05


def test_ci_of_an_accuracy_difference_matches_scipy():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 400)
    a = np.where(rng.random(400) < 0.6, y, rng.integers(0, 3, 400))
    b = np.where(rng.random(400) < 0.65, y, rng.integers(0, 3, 400))
    ours = paired_bootstrap(y, a, b, metric="accuracy", task="multiclass", n=2000, seed=3,
                            labels=[0, 1, 2])
    theirs = _scipy_ci(y, a, b, lambda t, pa, pb: np.mean(t == pb) - np.mean(t == pa))
    _close(ours["ci"], theirs)


def test_p_value_is_the_share_of_resamples_where_b_is_not_better():
    rng = np.random.default_rng(6)
    y = rng.normal(size=100)
    same = y + rng.normal(size=100)
    out = paired_bootstrap(y, same, same, metric="mae", task="regression", n=300, seed=0)
    assert out["delta"] == 0 and out["ci"] == [0, 0] and out["p_value"] == 1.0
    better = paired_bootstrap(y, same, y, metric="mae", task="regression", n=300, seed=0)
    assert better["delta"] > 0 and better["p_value"] == pytest.approx(1 / 301)
    # swapping the models flips the sign of the delta and of its interval
    worse = paired_bootstrap(y, y, same, metric="mae", task="regression", n=300, seed=0)
    assert worse["delta"] == pytest.approx(-better["delta"])
    assert worse["ci"] == pytest.approx([-better["ci"][1], -better["ci"][0]])


def test_resamples_where_the_metric_is_undefined_are_skipped_and_counted():
    y = np.array([1] + [0] * 11)  # one positive: many resamples draw none
    p = np.linspace(0.05, 0.9, 12)
    proba = np.c_[1 - p, p]
    out = paired_bootstrap(y, (p > 0.5).astype(int), (p > 0.5).astype(int), metric="roc_auc",
                           task="binary", n=500, seed=0, proba_a=proba, proba_b=proba[::-1],
                           labels=[0, 1])
    assert out["skipped"] > 0 and out["resamples"] + out["skipped"] == 500
    # P(no positive among 12 draws) = (11/12)**12 ≈ 0.35
    assert out["skipped"] / 500 == pytest.approx((11 / 12) ** 12, abs=0.08)


def test_a_metric_undefined_on_all_rows_is_refused_with_the_reason():
    y = np.zeros(10, dtype=int)
    proba = np.c_[np.full(10, 0.6), np.full(10, 0.4)]
    with pytest.raises(InvalidInput, match="roc_auc cannot be computed.*single class"):
        paired_bootstrap(y, y, y, metric="roc_auc", task="binary", proba_a=proba,
                         proba_b=proba, labels=[0, 1])


def test_the_same_seed_gives_the_same_answer_and_unknown_metrics_are_refused():
    rng = np.random.default_rng(7)
    y = rng.normal(size=80)
    a, b = y + rng.normal(size=80), y + rng.normal(size=80)
    first = paired_bootstrap(y, a, b, metric="r2", task="regression", n=200, seed=9)
    assert first == paired_bootstrap(y, a, b, metric="r2", task="regression", n=200, seed=9)
    with pytest.raises(InvalidInput, match="does not fit a regression task"):
        paired_bootstrap(y, a, b, metric="roc_auc", task="regression")
