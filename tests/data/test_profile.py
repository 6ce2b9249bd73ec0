"""Profiles agree with pandas and numpy on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data.profile import QUANTILES, profile_parquet


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({
        "x": rng.lognormal(3, 1, n),
        "k": rng.integers(-50, 50, n),
        "cat": rng.choice(["red", "green", "blue", "very long category"], n,
                          p=[0.5, 0.3, 0.15, 0.05]),
        "flag": rng.random(n) < 0.2,
        "when": pd.date_range("2023-01-01", periods=n, freq="37min").astype("datetime64[us]"),
    })
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame["k"] = frame["k"].astype("Int64")
    frame.loc[rng.random(n) < 0.05, "k"] = pd.NA
    frame.loc[rng.random(n) < 0.02, "cat"] = None
    return frame


@pytest.fixture
def profile(frame, tmp_path):
    path = tmp_path / "f.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path)
    return profile_parquet(path, table.schema)


def test_numeric_statistics_match_pandas_and_numpy(frame, profile):
    for name in ("x", "k"):
        column = frame[name].astype("float64")
        stats = profile["columns"][name]
        values = column.dropna().to_numpy()
        assert stats["count"] == column.count() and stats["missing"] == column.isna().sum()
        assert stats["missing_share"] == pytest.approx(column.isna().mean())
        assert stats["distinct"] == column.nunique()
        assert stats["min"] == pytest.approx(column.min())
        assert stats["max"] == pytest.approx(column.max())
        assert stats["mean"] == pytest.approx(column.mean(), rel=1e-9)
        assert stats["std"] == pytest.approx(column.std(), rel=1e-9)  # pandas: ddof=1
        for q in QUANTILES:
            assert stats["quantiles"][str(q)] == pytest.approx(np.quantile(values, q), rel=1e-9)


def test_histograms_match_numpy(frame, profile):
    values = frame["x"].dropna().to_numpy()
    histogram = profile["columns"]["x"]["histogram"]
    counts, edges = np.histogram(values, bins=len(histogram["counts"]),
                                 range=(values.min(), values.max()))
    assert histogram["counts"] == counts.tolist()
    assert histogram["edges"] == pytest.approx(edges.tolist())
    assert sum(histogram["counts"]) == len(values)


def test_categorical_top_values_match_value_counts(frame, profile):
    stats = profile["columns"]["cat"]
    expected = frame["cat"].value_counts()
    assert dict((v, n) for v, n in stats["top"]) == expected.to_dict()
    assert stats["distinct"] == frame["cat"].nunique()
    assert stats["missing"] == frame["cat"].isna().sum()
    lengths = frame["cat"].dropna().str.len()
    assert stats["length"] == {"min": lengths.min(), "max": lengths.max(),
                               "mean": pytest.approx(lengths.mean())}
    flags = dict((v, n) for v, n in profile["columns"]["flag"]["top"])
    assert flags == {"true": int(frame["flag"].sum()), "false": int((~frame["flag"]).sum())}


def test_datetime_range_and_histogram(frame, profile):
    stats = profile["columns"]["when"]
    assert stats["min"] == str(frame["when"].min()) and stats["max"] == str(frame["when"].max())
    assert sum(stats["histogram"]["counts"]) == len(frame)


def test_infinities_count_as_missing_not_as_a_crash(tmp_path):
    path = tmp_path / "inf.parquet"
    table = pa.table({"x": [1.0, 2.0, float("inf"), float("-inf"), float("nan")]})
    pq.write_table(table, path)
    stats = profile_parquet(path, table.schema)["columns"]["x"]
    assert (stats["count"], stats["missing"], stats["min"], stats["max"]) == (2, 3, 1.0, 2.0)
