"""The profile's reference bins (version 2): exact counts per equal-mass bin, checked by numpy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data.profile import EDGE_SAMPLE, PROFILE_VERSION, REFERENCE_BINS, profile_parquet


def _profile(frame: pd.DataFrame, tmp_path, **kwargs) -> dict:
    path = tmp_path / "f.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=3000)
    return profile_parquet(path, table.schema, **kwargs)


def _right_closed_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    # bins (edges[i-1], edges[i]]: searchsorted side="left" gives i for such a value
    slots = np.searchsorted(np.asarray(edges), values, side="left")
    assert slots.min() >= 1 and slots.max() <= len(edges) - 1  # nothing outside the edges
    return np.bincount(slots - 1, minlength=len(edges) - 1).tolist()


@pytest.mark.parametrize("rows", [900, EDGE_SAMPLE + 7000])  # exact edges, then sampled edges
def test_reference_counts_match_numpy(tmp_path, rows):
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({
        "x": rng.lognormal(2, 1, rows),
        "k": rng.integers(0, 5, rows),  # few values: quantiles collapse, one bin per value
        "when": (pd.Timestamp("2024-03-01", tz="UTC")
                 + pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s")),
        "name": rng.choice(["a", "b"], rows),
    })
    frame.loc[rng.random(rows) < 0.1, "x"] = np.nan
    profile = _profile(frame, tmp_path, pii={})
    assert profile["version"] == PROFILE_VERSION == 2
    for name, values in (("x", frame["x"].dropna().to_numpy()),
                         ("k", frame["k"].to_numpy(dtype=float)),
                         ("when", frame["when"].astype("int64").to_numpy() / 1e6)):
        stats = profile["columns"][name]
        reference = stats["reference"]
        edges = reference["edges"]
        assert edges == sorted(set(edges)), name  # ascending, no duplicates
        assert edges[0] < values.min() == edges[1] and edges[-1] == values.max(), name
        assert reference["counts"] == _right_closed_counts(values, edges), name
        assert sum(reference["counts"]) == stats["count"], name
        assert reference["mean"] == pytest.approx(values.mean(), rel=1e-9), name
        assert reference["std"] == pytest.approx(values.std(ddof=1), rel=1e-9), name
    x = profile["columns"]["x"]["reference"]
    assert len(x["edges"]) - 2 == REFERENCE_BINS  # continuous: 50 bins plus the minimum's own
    shares = np.array(x["counts"][1:]) / sum(x["counts"])
    assert np.all(np.abs(shares - 1 / REFERENCE_BINS) < 0.01)  # equal mass (sample: ~0.2 %)
    k = profile["columns"]["k"]["reference"]
    assert k["edges"][1:] == [0, 1, 2, 3, 4] and k["counts"] == \
        np.bincount(frame["k"], minlength=5).tolist()
    assert "reference" not in profile["columns"]["name"]
    json.dumps(profile, allow_nan=False)
    again = _profile(frame, tmp_path, pii={})  # a seeded sample: the same edges every time
    assert all(again["columns"][c]["reference"]["edges"] == profile["columns"][c]["reference"]
               ["edges"] for c in ("x", "k", "when"))


def test_reference_of_constant_and_empty_columns(tmp_path):
    frame = pd.DataFrame({"c": [3.5] * 10, "e": [np.nan] * 10, "z": [0.0] * 10})
    columns = _profile(frame, tmp_path, pii={})["columns"]
    assert columns["c"]["reference"]["counts"] == [10]
    assert columns["c"]["reference"]["edges"][1:] == [3.5]
    assert "reference" not in columns["e"]
    assert columns["z"]["reference"]["counts"] == [10]


def test_pii_columns_get_no_reference(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"salary": rng.normal(5e4, 1e4, 200), "age": rng.integers(18, 80, 200)})
    columns = _profile(frame, tmp_path, pii={"salary": "financial"})["columns"]
    assert "reference" not in columns["salary"] and "histogram" not in columns["salary"]
    assert "reference" in columns["age"]
