"""Wide data: hundreds to thousands of columns ingest, profile, validate and train.

Profiles of a few columns spread over the file are checked against pandas and numpy; the
validation of a copy with planted violations must find exactly those. Personal-data columns
keep no raw value in the profile, its JSON or the HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import contract as contracts
from loopml.data.profile import BINS, QUANTILES, profile_parquet
from loopml.data.snapshot import write_snapshot
from loopml.data.sources import resolve_source
from loopml.data.validate import validate


def wide_frame(columns: int, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Floats (every 7th with 10 % missing), every 10th an integer, every 20th a category."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(columns - 1):
        if i % 20 == 0 and i:
            data[f"c{i:05d}"] = np.array(["red", "green", "blue", "grey"])[rng.integers(0, 4, rows)]
        elif i % 10 == 0:
            data[f"c{i:05d}"] = rng.integers(0, 1000, rows)
        else:
            values = rng.normal(i % 7, 1 + i % 3, rows).round(4)
            if i % 7 == 3:
                values[rng.random(rows) < 0.1] = np.nan
            data[f"c{i:05d}"] = values
    data["target"] = rng.integers(0, 2, rows)
    return pd.DataFrame(data)


def check_against_pandas(profile: dict, frame: pd.DataFrame, names: list[str]) -> None:
    assert profile["num_rows"] == len(frame)
    assert list(profile["columns"]) == list(frame.columns)
    for name in names:
        stats, column = profile["columns"][name], frame[name]
        assert stats["count"] == column.count(), name
        assert stats["missing"] == column.isna().sum(), name
        assert stats["distinct"] == column.nunique(), name
        if not pd.api.types.is_numeric_dtype(column):
            assert dict(map(tuple, stats["top"])) == column.value_counts().to_dict(), name
            continue
        values = column.dropna().to_numpy(dtype=float)
        assert stats["min"] == pytest.approx(values.min()), name
        assert stats["max"] == pytest.approx(values.max()), name
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-9), name
        assert stats["std"] == pytest.approx(values.std(ddof=1), rel=1e-9), name
        for q in QUANTILES:
            assert stats["quantiles"][str(q)] == pytest.approx(np.quantile(values, q)), name
        counts, edges = np.histogram(values, bins=BINS, range=(values.min(), values.max()))
        assert stats["histogram"]["counts"] == counts.tolist(), name
        assert stats["histogram"]["edges"] == pytest.approx(edges.tolist()), name


def ingest_profile_validate(tmp_path: Path, columns: int, rows: int) -> None:
    frame = wide_frame(columns, rows)
    csv = tmp_path / "wide.csv"
    frame.to_csv(csv, index=False)
    snap = write_snapshot(resolve_source(csv), tmp_path / "snap.parquet")
    assert snap.num_rows == rows and len(snap.schema) == columns

    profile = profile_parquet(snap.path, snap.schema, pii={})
    names = list(frame.columns)
    # first, last, and columns of every kind spread over the file (several query chunks)
    spread = [names[0], names[3], names[20], names[columns // 2], names[columns // 2 + 1],
              names[-40], names[-3], names[-2], "target"]
    check_against_pandas(profile, frame, spread)

    contract = contracts.infer("wide", snap.schema, profile, target="target", pii={})
    assert validate(resolve_source(csv), contract).violations == []

    # A copy with violations planted in columns far apart: exactly those are reported.
    bad = frame.astype({names[1]: object})
    bad.loc[[2, 5], names[1]] = "n/a"  # text in a number column
    bad.loc[7, names[-2]] = frame[names[-2]].max() + 100  # above the inferred maximum
    bad.loc[[1, 2, 3], names[-40]] = "purple"  # outside the allowed categories
    bad_csv = tmp_path / "bad.csv"
    bad.to_csv(bad_csv, index=False)
    report = validate(resolve_source(bad_csv), contract)
    found = {(v.column, v.rule): v.rows for v in report.violations}
    assert found == {(names[1], "type"): 2, (names[-2], "max"): 1, (names[-40], "allowed"): 3}
    assert not report.passed


def test_600_columns_ingest_profile_and_validate(tmp_path):
    ingest_profile_validate(tmp_path, 600, 200)


@pytest.mark.slow
def test_2000_columns_ingest_profile_and_validate(tmp_path):
    ingest_profile_validate(tmp_path, 2_000, 150)


def test_exact_distinct_counts_ignore_missing_values(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"x": [1.0, 1.0, None, float("nan"), 2.0], "s": ["a", None, "a", "b", "b"],
                      "empty": pa.array([None] * 5, type=pa.float64())})
    pq.write_table(table, tmp_path / "f.parquet")
    columns = profile_parquet(tmp_path / "f.parquet", table.schema, pii={})["columns"]
    assert (columns["x"]["distinct"], columns["s"]["distinct"]) == (2, 2)
    assert columns["empty"]["distinct"] == 0 and columns["empty"]["count"] == 0


# -- personal data ---------------------------------------------------------------------------

EMAILS = [f"person{i}@example.org" for i in range(12)]
PHONES = [f"+1 555-867-{5300 + i}" for i in range(12)]


def personal_frame() -> pd.DataFrame:
    n = 240
    rng = np.random.default_rng(4)
    return pd.DataFrame({
        "email": [EMAILS[i % 12] for i in range(n)],  # few distinct: would get top values
        "phone": [PHONES[i % 12] for i in range(n)],
        "account": rng.integers(70_000_001, 70_000_013, n),  # declared personal, numeric
        "birth_date": pd.date_range("1961-03-07", periods=n, freq="D").astype("datetime64[s]"),
        "amount": rng.normal(100, 10, n).round(2),
        "plan": rng.choice(["free", "pro"], n),
    })


def raw_values(frame: pd.DataFrame) -> list[str]:
    dates = frame["birth_date"]
    return [*EMAILS, *PHONES, *(str(v) for v in frame["account"].unique()),
            str(dates.min().date()), str(dates.max().date()),
            str(float(frame["account"].min())), str(float(frame["account"].max()))]


def test_profile_stores_no_raw_values_of_detected_or_declared_pii(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = personal_frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "p.parquet")
    declared = {"email": "email", "phone": "phone", "account": "personal data",
                "birth_date": "birth_date"}
    for pii in (declared, None):  # None: the profile detects them itself
        profile = profile_parquet(tmp_path / "p.parquet", table.schema, pii=pii)
        if pii is None:
            profile["columns"].pop("account")  # named like nothing personal: not detected
        text = json.dumps(profile)
        leaked = [v for v in raw_values(frame) if v in text]
        assert leaked == [], leaked
        for name in profile["columns"]:
            stats = profile["columns"][name]
            if name in ("amount", "plan"):
                assert "pii" not in stats
                continue
            assert stats["pii"] and stats["top"] == []
            assert not {"min", "max", "quantiles", "histogram", "mean"} & stats.keys()
            # counts that reveal no value are still there, and right
            assert stats["count"] == len(frame) and stats["distinct"] == frame[name].nunique()
    # ordinary columns keep their statistics
    assert profile["columns"]["amount"]["max"] == pytest.approx(frame["amount"].max())
    assert dict(map(tuple, profile["columns"]["plan"]["top"])) == \
        frame["plan"].value_counts().to_dict()


def test_catalog_profile_json_and_report_hold_no_raw_pii(catalog, tmp_path):
    frame = personal_frame()
    csv = tmp_path / "people.csv"
    frame.to_csv(csv, index=False)
    # phone kept on purpose, account declared, e-mail detected with no policy
    result = catalog.add(resolve_source(csv), name="people",
                         pii={"phone": "keep", "account": "keep"})
    version = result.version
    texts = {"profile": json.dumps(catalog.profile(version)),
             "report": catalog.report_html(version)}
    for where, text in texts.items():
        leaked = [v for v in raw_values(frame) if v in text]
        assert leaked == [], (where, leaked)
    columns = catalog.profile(version)["columns"]
    assert {n for n, s in columns.items() if "pii" in s} == {"email", "phone", "account",
                                                            "birth_date"}


# -- training --------------------------------------------------------------------------------

@pytest.mark.slow
def test_train_finishes_on_1000_columns(tmp_path):
    from loopml.config import ProjectConfig
    from loopml.tracking import TrackingClient
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    rows = 300
    frame = wide_frame(1_000, rows, seed=2)
    signal = frame["c00001"].to_numpy() - frame["c00998"].to_numpy()
    frame["target"] = (signal > np.median(signal)).astype(int)
    csv = tmp_path / "wide.csv"
    frame.to_csv(csv, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "wide"},
        "data": {"dataset": "wide", "source": str(csv), "target": "target"},
        "train": {"candidates": ["lightgbm", "linear"], "trials": 2, "n_jobs": 1, "seed": 1,
                  "cv_folds": 3},
    })
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    outcome = train_project(config, workspace=workspace)
    client = TrackingClient.from_workspace(workspace)
    assert client.run_detail(outcome.run_id).run.status == "FINISHED"
    card = json.loads(client.load_artifact(outcome.run_id, "model_card.json"))
    importance = card["evaluation"]["explanations"]["importance"]
    assert len(importance) == 999  # every input column, the target excluded
    assert set(sorted(importance, key=importance.get)[-5:]) & {"c00001", "c00998"}
    assert card["evaluation"]["metrics"]["roc_auc"] > 0.6

