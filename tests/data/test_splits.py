"""Splits: reproducible from the seed, right proportions, groups kept whole, time ordered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.data import SplitSpec, resolve_source
from loopml.data.splits import assign
from loopml.errors import InvalidInput


def test_random_split_is_reproducible_and_sized():
    spec = SplitSpec("random", (0.6, 0.2, 0.2), seed=5)
    first, again = assign(None, 1000, spec), assign(None, 1000, spec)
    assert np.array_equal(first, again)
    assert np.bincount(first).tolist() == [600, 200, 200]
    assert not np.array_equal(first, assign(None, 1000, SplitSpec("random", (0.6, 0.2, 0.2), 6)))


def test_stratified_split_keeps_class_shares():
    y = pd.DataFrame({"y": np.repeat(["a", "b", "c"], [700, 200, 100])})
    labels = assign(y, len(y), SplitSpec("stratified", seed=1, column="y"))
    for part in range(3):
        shares = y.y[labels == part].value_counts(normalize=True)
        assert shares["a"] == pytest.approx(0.7, abs=0.01)
        assert shares["c"] == pytest.approx(0.1, abs=0.01)


def test_group_split_never_splits_a_group():
    rng = np.random.default_rng(0)
    groups = pd.DataFrame({"g": rng.integers(0, 80, 2000)})
    labels = assign(groups, 2000, SplitSpec("group", seed=3, column="g"))
    per_group = pd.Series(labels).groupby(groups.g).nunique()
    assert (per_group == 1).all()
    assert 0.55 < (labels == 0).mean() < 0.85


def test_time_split_puts_the_latest_rows_in_test():
    times = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=100, freq="D")[::-1]})
    labels = assign(times, 100, SplitSpec("time", column="t"))
    assert times.t[labels == 0].max() < times.t[labels == 1].min()
    assert times.t[labels == 1].max() < times.t[labels == 2].min()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (SplitSpec("shuffle"), "not one of random"),
        (SplitSpec("random", (0.5, 0.5, 0.5)), "add up to 1"),
        (SplitSpec("stratified"), "needs a column"),
        (SplitSpec("group", column="nope"), "'nope' is not in the data"),
    ],
)
def test_bad_specs_are_clear_errors(spec, match):
    with pytest.raises(InvalidInput, match=match):
        spec.check(["a", "b"])


def test_split_is_recorded_with_the_version(catalog, credit_csv):
    version = catalog.add(resolve_source(credit_csv), name="credit").version
    spec = SplitSpec("stratified", seed=9, column="default")
    parts = catalog.load_split("credit", spec)
    assert sum(len(p) for p in parts.values()) == 600
    recorded = catalog.store.datasets.splits(version.id)
    assert len(recorded) == 1 and recorded[0].spec["seed"] == 9
    assert recorded[0].counts == {k: len(v) for k, v in parts.items()}
    again = catalog.load_split("credit", spec)
    pd.testing.assert_frame_equal(again["test"], parts["test"])
    assert len(catalog.store.datasets.splits(version.id)) == 1
