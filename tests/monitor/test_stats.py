"""Each drift statistic equals scipy's on the same samples (ties and unequal sizes included)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from loopml.errors import InvalidInput
from loopml.monitor import stats

REL = 1e-12
SIZES = [(30, 30), (50, 173), (1000, 40), (2500, 3100)]


def _samples(seed: int, n1: int, n2: int, *, ties: bool):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many ties inside and across samples
        return rng.integers(0, 12, n1).astype(float), rng.integers(1, 14, n2).astype(float)
    return rng.normal(0, 1, n1), rng.normal(0.2, 1.3, n2)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n1,n2", SIZES)
def test_ks_equals_scipy_on_samples_and_counts(n1, n2, ties):
    for seed in range(3):
        a, b = _samples(seed, n1, n2, ties=ties)
        expected = sps.ks_2samp(a, b, method="asymp")
        got = stats.ks_2samp(a, b)
        assert got.statistic == pytest.approx(expected.statistic, rel=REL, abs=1e-15)
        assert got.p_value == pytest.approx(expected.pvalue, rel=REL, abs=1e-300)
        # counts on the distinct values: exact for discrete data
        values = np.unique(np.concatenate([a, b]))
        ca = np.searchsorted(values, a)
        cb = np.searchsorted(values, b)
        counted = stats.ks_2samp_counts(np.bincount(ca, minlength=values.size),
                                        np.bincount(cb, minlength=values.size))
        assert counted.statistic == pytest.approx(expected.statistic, rel=REL, abs=1e-15)
        assert counted.p_value == pytest.approx(expected.pvalue, rel=REL, abs=1e-300)


def test_ks_counts_ignore_bins_empty_on_both_sides():
    a, b = [3, 0, 0, 2, 5], [1, 0, 4, 0, 5]
    plain = stats.ks_2samp_counts([3, 2, 5, 0], [1, 0, 5, 4])  # different order: not equal
    assert stats.ks_2samp_counts(a, b).statistic == pytest.approx(
        sps.ks_2samp(np.repeat(np.arange(5.0), a), np.repeat(np.arange(5.0), b),
                     method="asymp").statistic, rel=REL)
    assert plain.statistic >= 0


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n1,n2", SIZES)
def test_wasserstein_equals_scipy(n1, n2, ties):
    for seed in range(3):
        a, b = _samples(seed + 10, n1, n2, ties=ties)
        expected = sps.wasserstein_distance(a, b)
        assert stats.wasserstein(a, b) == pytest.approx(expected, rel=REL)
        rng = np.random.default_rng(seed)
        values = np.sort(rng.normal(0, 3, 40))
        ua, ub = rng.integers(0, 30, 40), rng.integers(0, 30, 40)
        ub[:5] = 0  # empty bins on one side
        expected = sps.wasserstein_distance(values, values, ua, ub)
        assert stats.wasserstein_counts(values, ua, ub) == pytest.approx(expected, rel=REL)


def test_wasserstein_counts_of_unsorted_values_equal_scipy():
    rng = np.random.default_rng(4)
    values = rng.normal(size=12)
    ua, ub = rng.integers(1, 9, 12), rng.integers(1, 9, 12)
    assert stats.wasserstein_counts(values, ua, ub) == pytest.approx(
        sps.wasserstein_distance(values, values, ua, ub), rel=REL)


@pytest.mark.parametrize("k", [2, 3, 7, 40])
def test_chi2_equals_scipy_contingency(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        a = rng.integers(0, 200, k)
        b = rng.integers(0, 50, k)
        a[0], b[0] = 0, 0  # an empty category: dropped on both sides
        if k > 2:
            a[-1] = 0  # empty on one side only: kept
            b[-1] = max(b[-1], 1)
        keep = (a + b) > 0
        expected = sps.chi2_contingency(np.vstack([a[keep], b[keep]]), correction=False)
        got = stats.chi2_counts(a, b)
        assert got.statistic == pytest.approx(expected.statistic, rel=REL)
        assert got.p_value == pytest.approx(expected.pvalue, rel=REL, abs=1e-300)
        assert got.dof == expected.dof


def test_chi2_on_samples_of_categories_equals_scipy():
    rng = np.random.default_rng(1)
    a = rng.choice(["x", "y", "z"], 300, p=[0.5, 0.3, 0.2]).tolist()
    b = rng.choice(["x", "y", "z", "w"], 120, p=[0.4, 0.3, 0.2, 0.1]).tolist() + [None]
    table = [[a.count(v) for v in "wxyz"], [b.count(v) for v in "wxyz"]]
    expected = sps.chi2_contingency(table, correction=False)
    got = stats.chi2(a, b)
    assert (got.statistic, got.p_value, got.dof) == pytest.approx(
        (expected.statistic, expected.pvalue, expected.dof), rel=REL)


def test_chi2_with_one_category_is_no_evidence():
    assert stats.chi2_counts([5, 0], [7, 0]) == (0.0, 1.0, 0)


@pytest.mark.parametrize("k", [2, 5, 51])
def test_js_distance_equals_scipy_base_2(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        a, b = rng.integers(0, 100, k), rng.integers(0, 100, k)
        a[0] = 0
        expected = jensenshannon(a, b, base=2)
        assert stats.js_distance_counts(a, b) == pytest.approx(expected, rel=REL)
    assert stats.js_distance_counts([3, 0], [0, 9]) == pytest.approx(1.0, rel=REL)
    assert stats.js_distance(["a", "b", "b"], ["b", "c"]) == pytest.approx(
        jensenshannon([1, 2, 0], [0, 1, 1], base=2), rel=REL)


def test_psi_by_hand():
    a, b = np.array([10, 20, 30, 0.0]), np.array([15, 15, 25, 5.0])
    p, q = np.maximum(a / a.sum(), 1e-4), np.maximum(b / b.sum(), 1e-4)
    assert stats.psi_counts(a, b) == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=REL)
    assert stats.psi_counts([5, 0, 5], [5, 0, 5]) == 0.0
    rng = np.random.default_rng(0)
    same = rng.normal(size=20_000)
    assert stats.psi(same[:10_000], same[10_000:]) < 0.01
    assert stats.psi(same, same + 1.0) > 0.25


def _holm(p):
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def test_adjust_pvalues_holm_bh_none():
    rng = np.random.default_rng(5)
    for m in (1, 2, 10, 40):
        p = rng.random(m) ** 3
        p[: m // 3] = p[0]  # ties
        np.testing.assert_allclose(stats.adjust_pvalues(p, "holm"), _holm(p), rtol=REL)
        np.testing.assert_allclose(stats.adjust_pvalues(p, "bh"),
                                   sps.false_discovery_control(p, method="bh"), rtol=REL)
        np.testing.assert_array_equal(stats.adjust_pvalues(p, "none"), p)


def test_adjust_pvalues_keeps_nan_out_of_the_family():
    p = np.array([0.01, np.nan, 0.02])
    out = stats.adjust_pvalues(p, "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], _holm([0.01, 0.02]), rtol=REL)
    with pytest.raises(InvalidInput, match="holm, bh or none"):
        stats.adjust_pvalues(p, "bonferroni")


def test_mismatched_counts_are_refused():
    with pytest.raises(InvalidInput, match="same bins"):
        stats.chi2_counts([1, 2], [1, 2, 3])
    with pytest.raises(InvalidInput, match="counts >= 0"):
        stats.psi_counts([1, -2], [1, 2])
