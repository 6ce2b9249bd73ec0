"""The monitoring HTML report: self-contained, escaped, no personal data, small at 300 features."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import sys
from pathlib import Path

import pytest

from loopml.errors import AlreadyExists, InvalidInput
from loopml.monitor.report_html import (
    pii_columns,
    render_report,
    report_data,
    report_json_text,
    write_report,
)

SECRET = "alice.secret@example.com"  # a raw value of the PII column: must never be shown
SCRIPT = "<script>alert(1)</script>"
UNICODE = "naïve ☃ \"quoted\" 'single' \x1b[31m"
LONG = "very_long_feature_name_" * 20
EDGES = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]


def _numeric_ref(name: str) -> dict:
    return {"name": name, "kind": "numeric", "rows": 5000, "missing_share": 0.01,
            "edges": EDGES, "counts": [0, 500, 1500, 1500, 1000, 450, 0], "mean": 25.0,
            "std": 11.0, "categories": None, "category_counts": None, "low": 0.0,
            "high": 50.0, "allowed": None, "pii": None}


def _categorical_ref(name: str, categories: list[str]) -> dict:
    counts = [1000.0 * (i + 1) for i in range(len(categories))] + [10.0]
    return {"name": name, "kind": "categorical", "rows": 5000, "missing_share": 0.0,
            "edges": None, "counts": None, "mean": None, "std": None,
            "categories": categories, "category_counts": counts, "low": None, "high": None,
            "allowed": categories, "pii": None}


def _feature_drift(name: str, kind: str, *, drifted: bool, monitored: bool = True,
                   note: str | None = None) -> dict:
    p = 1e-6 if drifted else 0.4
    return {"name": name, "kind": kind, "rows": 1200, "ref_rows": 5000,
            "test": ("ks" if kind == "numeric" else "chi2") if monitored else None,
            "statistic": 0.31 if drifted else 0.02, "p_value": p if monitored else None,
            "p_adjusted": min(1.0, p * 6) if monitored else None,
            "wasserstein_norm": (0.42 if drifted else 0.03) if kind == "numeric" else None,
            "js_distance": (0.22 if drifted else 0.01) if kind != "numeric" else None,
            "psi": 0.61 if drifted else 0.01,
            "decided_by": (f"ks p={p:.2g} < 0.05 (holm)" if monitored else ""),
            "drifted": drifted, "monitored": monitored, "note": note}


RULE = ("windows and references of at least 5,000 rows: effect sizes decide (numbers: "
        "Wasserstein/std >= 0.1 or PSI >= 0.25; categories: Jensen-Shannon distance >= 0.1 or "
        "PSI >= 0.25); smaller: KS (numbers) and chi-squared (categories) at alpha 0.05 with "
        "holm correction across features; a window drifts when at least 30% of its features "
        "drift")


def make_report(n_extra: int = 0, *, windows: int = 4, stored: bool = True) -> dict:
    """Return a realistic whole report: two versions, drift in the later windows, PII.

    ``stored``: the runner's shape (a reference per version, stored alerts naming their
    window by ``start_key``, the rule as text); otherwise the design's first sketch (one
    reference, settings, alerts in the windows and listed with ``window_start``).
    """
    numeric = ["age", "income", SCRIPT, LONG] + [f"f{i:03d}" for i in range(n_extra)]
    categorical = {"city": ["Paris", "Lyon", "Nice"], UNICODE: ["a<b", "c&d"]}
    references = {n: _numeric_ref(n) for n in numeric}
    references.update({n: _categorical_ref(n, c) for n, c in categorical.items()})
    # Defensive: even if a PII column's reference held values, they must not be shown.
    references["email"] = {**_categorical_ref("email", [SECRET]), "pii": "email"}
    prediction_ref = {**_numeric_ref("prediction"), "edges": [0.0, 0.25, 0.5, 0.75, 1.0],
                      "counts": [0, 1000, 2000, 1500, 500, 0]}
    out = []
    for i in range(windows):
        late = i >= windows // 2
        version = 1 if i < 2 else 2
        drifted_names = ["income", "city"] if late else []
        features = [_feature_drift(n, "numeric", drifted=n in drifted_names) for n in numeric]
        features += [_feature_drift(n, "categorical", drifted=n in drifted_names)
                     for n in categorical]
        features.append(_feature_drift("email", "categorical", drifted=False, monitored=False,
                                       note="pii (email): not monitored"))
        monitored = len(features) - 1
        share = len(drifted_names) / monitored
        sketch = {"rows": 1200, "features": {
            **{n: {"count": 1200, "missing": 12, "counts": [5, 100, 300, 400, 250, 130, 3]
                   if n != "income" else [0, 10, 50, 200, 400, 500, 28], "min": -1.0,
                   "max": 51.0, "sum": 30000.0, "sumsq": 9e5, "out_of_range": 8, "invalid": 0}
               for n in numeric},
            "city": {"count": 1200, "missing": 0, "counts": [100, 200, 800, 0], "unseen": 100,
                     "unseen_top": [["Marseille", 100]]},
            UNICODE: {"count": 1200, "missing": 0, "counts": [600, 600, 0], "unseen": 0,
                      "unseen_top": []},
            "email": {"count": 1200, "missing": 0, "counts": [0, 0], "unseen": 1200,
                      "unseen_top": [[SECRET, 3]], "min": None, "max": None}},
            "prediction": {"count": 1200, "missing": 0, "counts": [0, 100, 300, 500, 300, 0]}}
        alerts = []
        if late:
            alerts = [{"kind": "drift", "severity": "critical",
                       "message": f"{share:.0%} of features drifted: income, city"},
                      {"kind": "performance", "severity": "warning",
                       "message": "roc_auc 0.61 is 0.13 below the card's 0.74"}]
        out.append({
            "model": "credit", "version": version, "window": "1d",
            "start": f"2026-11-{20 + i:02d}T00:00:00+00:00",
            "end": f"2026-11-{21 + i:02d}T00:00:00+00:00", "index": None, "rows": 1200 + i,
            "drift": {"features": features,
                      "prediction": _feature_drift("prediction", "numeric", drifted=late),
                      "share": share, "drifted": drifted_names, "monitored": monitored,
                      "dataset_drift": share >= 0.3,
                      "rule": "small window (1200 rows < 5000): KS and chi-squared tests, "
                              "Holm-corrected at alpha 0.05"},
            "quality": {"columns": [
                {"name": "age", "missing_share": 0.01, "ref_missing_share": 0.01,
                 "out_of_range_share": 0.02, "unseen_share": None, "unseen_top": None,
                 "invalid_share": 0.0},
                {"name": "city", "missing_share": 0.0, "ref_missing_share": 0.0,
                 "out_of_range_share": None, "unseen_share": 0.083,
                 "unseen_top": [["Marseille", 100], [SCRIPT, 1]], "invalid_share": 0.0},
                {"name": "email", "pii": "email", "missing_share": 0.0,
                 "ref_missing_share": 0.0, "out_of_range_share": None, "unseen_share": 1.0,
                 "unseen_top": [[SECRET, 3]], "invalid_share": float("nan")}],
                "issues": ["age: 2.0% out of range >= 1.0%"] + (
                    ["city: 8.3% unseen categories >= 1.0%"] if late else [])},
            "performance": {"metric": "roc_auc", "reference": 0.74,
                            "labeled_rows": [800, 0, 900, 40][i % 4],
                            "realised": [{"roc_auc": 0.73}, None, {"roc_auc": 0.61},
                                         {"roc_auc": float("nan")}][i % 4],
                            "estimated": {"roc_auc": [0.73, 0.72, 0.64, 0.66][i % 4]},
                            "drop": [0.01, None, 0.13, None][i % 4]},
            "alerts": alerts, "sketch": sketch})
    if stored:
        reference = {"source": "profile of credit@1", "rows": 5000, "features": references,
                     "prediction": prediction_ref, "test_metrics": {"roc_auc": 0.74}}
        stored_alerts = [
            {"id": n, "model": "credit", "version": w["version"], "window": "1d",
             "start_key": 1795132800000 + 86_400_000 * i, "kind": a["kind"],
             "severity": a["severity"], "message": a["message"], "details": {},
             "created_at": "2026-11-30T07:00:00+00:00", "webhook": None}
            for n, (i, w, a) in enumerate(((i, w, a) for i, w in enumerate(out)
                                           for a in w.pop("alerts")), start=1)]
        return {"model": "credit", "window": "1d", "log_dir": "/tmp/predictions",
                "generated_at": "2026-11-30T07:00:00+00:00", "served_version": 2,
                "reference": {"1": reference, "2": {**reference,
                                                    "source": "profile of credit@2"}},
                "rule": RULE, "windows": out, "alerts": stored_alerts,
                "skipped": [{"path": "2026-11-21/bad.parquet", "reason": "not Parquet"}]}
    all_alerts = [{**a, "window_start": w["start"], "version": w["version"]}
                  for w in out for a in w["alerts"]]
    return {"model": "credit", "window": "1d", "log_dir": "/tmp/predictions",
            "generated_at": "2026-11-30T07:00:00+00:00",
            "settings": {"drift": {"alpha": 0.05, "correction": "holm",
                                   "large_sample_rows": 5000, "wasserstein": 0.1,
                                   "jensen_shannon": 0.1, "psi": 0.25, "share": 0.3,
                                   "min_rows": 50}},
            "reference": {"source": "profile of credit@1", "rows": 5000,
                          "features": references, "prediction": prediction_ref},
            "windows": out, "alerts": all_alerts,
            "skipped": [{"segment": "2026-11-21/bad.parquet", "reason": "not Parquet"}]}


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)",
                                                    page)]


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(make_report())


def test_report_is_self_contained_with_plots(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "<link" not in page and "<script" not in page.lower()
    images = _images(page)
    # drift over time, performance over time, 6 feature distributions, the prediction's
    assert len(images) == 9
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    for section in ("Summary", "Alerts (4)", "Drift over time", "Performance over time",
                    "Features in the latest window", "Prediction drift", "Data quality",
                    "Skipped (1)"):
        assert section in page
    assert "<li>2026-11-21/bad.parquet: not Parquet</li>" in page


def test_summary_states_the_numbers_and_the_rule(page: str) -> None:
    report = make_report()
    total = sum(w["rows"] for w in report["windows"])
    assert f"<td>{total:,}</td>" in page
    assert "<td>4 (2 critical)</td>" in page
    assert ("version 1: profile of credit@1 (5,000 rows)<br>version 2: profile of credit@2"
            in page)
    assert html.escape("Windows and references of at least 5,000 rows: effect sizes") in page
    assert html.escape(report["windows"][-1]["drift"]["rule"]) in page
    # Stored alerts find their windows by start_key: the last two windows raised them.
    drift_table = page[page.index("<h2>Drift over time"):page.index("<h2>Performance")]
    assert drift_table.count("<td>drift, performance</td>") == 2
    assert "<td>2026-11-22</td><td>2</td><td>drift</td>" in page


def test_design_shape_with_settings_states_the_thresholds() -> None:
    report = make_report(windows=3, stored=False)
    page = render_report(report)
    assert "<td>profile of credit@1 (5,000 rows)</td>" in page
    assert "at least 5,000 rows" in page and "≥ 0.1" in page and "Holm" in page
    assert "at least 30.0% of its monitored features" in page
    assert "<td>4 (2 critical)</td>" in page
    drift_table = page[page.index("<h2>Drift over time"):page.index("<h2>Performance")]
    assert drift_table.count("<td>drift, performance</td>") == 2


def test_user_strings_are_escaped_and_stripped(page: str) -> None:
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page
    assert "naïve ☃ &quot;quoted&quot; &#x27;single&#x27; [31m" in page
    assert "a&lt;b" not in page  # category labels go into plots, not into markup


def test_pii_values_never_appear(page: str, tmp_path: Path) -> None:
    report = make_report()
    assert pii_columns(report) == {"email"}
    assert SECRET not in page and "alice" not in page
    assert "email" in page  # the column is named, its values are not
    assert SECRET not in report_json_text(report)
    html_path, json_path = write_report(report, tmp_path, stem="credit")
    assert SECRET not in html_path.read_text() and SECRET not in json_path.read_text()
    # The caller's report is left as it was.
    assert report["windows"][0]["quality"]["columns"][2]["unseen_top"] == [[SECRET, 3]]


def test_json_is_strict_and_keeps_the_content(tmp_path: Path) -> None:
    report = make_report()
    data = _strict(report_json_text(report))
    assert data["windows"][3]["performance"]["realised"]["roc_auc"] is None
    assert data["windows"][2]["drift"]["drifted"] == ["income", "city"]
    assert data["windows"][0]["quality"]["columns"][1]["unseen_top"][1] == [SCRIPT, 1]
    assert data["reference"]["1"]["features"]["email"].get("categories") is None
    assert data["reference"]["2"]["features"]["city"]["categories"] == ["Paris", "Lyon", "Nice"]
    html_path, json_path = write_report(report, tmp_path / "reports", stem="credit-2026-11-30")
    assert (html_path.name, json_path.name) == ("credit-2026-11-30.html",
                                                "credit-2026-11-30.json")
    assert _strict(json_path.read_text()) == data
    # No temporary file left behind.
    assert sorted(p.name for p in html_path.parent.iterdir()) == sorted(
        [json_path.name, html_path.name])


def test_write_report_takes_a_lone_surrogate(tmp_path: Path) -> None:
    report = {"model": "m\ud800", "windows": []}
    html_path, json_path = write_report(report, tmp_path, stem="odd")
    assert _strict(json_path.read_text())["model"] == "m\ud800"
    assert "m\\ud800" in html_path.read_text()


def test_write_report_refuses_bad_stems_and_existing_files(tmp_path: Path) -> None:
    for stem in ("../up", "a/b", "", "bad\nname"):
        with pytest.raises(InvalidInput, match="stem"):
            write_report(make_report(), tmp_path, stem=stem)
    write_report({}, tmp_path, stem="r")
    with pytest.raises(AlreadyExists):
        write_report({}, tmp_path, stem="r", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]


@pytest.mark.slow
def test_300_features_stay_a_small_file() -> None:
    report = make_report(n_extra=294)
    assert len(report["windows"][-1]["drift"]["features"]) == 301
    page = render_report(report)  # at most 24 distribution plots by default
    assert len(page.encode()) < 2_000_000
    assert len(_images(page)) == 2 + 24 + 1
    # Every feature keeps its row in the table; the drifted ones come first.
    assert page.count("<td>f") >= 294
    table = page[page.index("Features in the latest window"):]
    assert table.index(">income<") < table.index(">age<")


def test_missing_keys_and_none_values_render() -> None:
    assert "Monitoring report" in render_report({})
    sparse = {"model": None, "windows": [
        {"start": None, "drift": None, "quality": {"columns": [None, {"name": "x"}]},
         "performance": {"metric": "rmse", "realised": None, "estimated": None}},
        {"index": 2, "rows": 10, "drift": {"share": float("nan"), "features": [{}],
                                           "prediction": {"drifted": None}},
         "sketch": {"features": {"x": {"counts": [1, 2]}}}, "alerts": [{"kind": "quality"}]}],
        "reference": {"features": {"x": {"edges": [0, float("inf")], "counts": [1]}}}}
    page = render_report(sparse)
    assert "#2" in page and "Alerts (1)" in page
    stored = {"windows": [], "alerts": [
        {"id": 1, "window": "1d", "start_key": 1796083200000, "kind": "drift"},
        {"id": 2, "window": "500rows", "start_key": 7, "kind": "quality"}]}
    page = render_report(stored)
    assert "<td>2026-12-01</td>" in page and "<td>#7</td>" in page
    _strict(report_json_text(sparse))


def test_rendering_leaves_pyplot_alone() -> None:
    loaded = "matplotlib.pyplot" in sys.modules
    render_report(make_report(windows=2))
    assert ("matplotlib.pyplot" in sys.modules) == loaded


def test_report_data_drops_every_value_of_a_pii_column() -> None:
    data = report_data(make_report(windows=1))
    email = data["windows"][0]["sketch"]["features"]["email"]
    assert set(email) <= {"count", "missing"}
    assert not any(isinstance(v, float) and math.isnan(v) for v in
                   data["windows"][0]["quality"]["columns"][2].values())


def test_plots_come_from_the_latest_windows_version_and_drifted_first(page: str) -> None:
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions[:2] == ["income", "city"]
    report = make_report()
    report["reference"]["2"] = {"source": "profile of credit@2", "rows": 10, "features": {}}
    assert "No distribution plots" in render_report(report)


def test_row_windows_are_named_by_number() -> None:
    report = make_report(windows=2)
    for number, window in enumerate(report["windows"]):
        window.update(window="500rows", index=number)
    for alert in report["alerts"]:
        alert.update(window="500rows", start_key=1)
    page = render_report(report)
    assert "<td>#0</td>" in page and "<td>#1</td><td>1</td><td class='num'>1,201</td>" in page
    assert "<td>#1</td><td>1</td><td>drift</td>" in page
    drift_table = page[page.index("<h2>Drift over time"):page.index("<h2>Performance")]
    assert drift_table.count("<td>drift, performance</td></tr>") == 1  # found by start_key


def test_report_of_real_sketches_and_verdicts(tmp_path: Path) -> None:
    """Reference, window sketches and verdicts from loopml.monitor itself, rendered."""
    import numpy as np
    import pandas as pd

    from loopml.monitor.drift import window_drift, window_quality
    from loopml.monitor.settings import DriftSettings, QualitySettings
    from loopml.monitor.sketch import Reference, WindowSketch

    rng = np.random.default_rng(7)

    def frame(rows: int, *, shift: float) -> pd.DataFrame:
        return pd.DataFrame({
            "age": rng.normal(40, 10, rows),
            "income": rng.lognormal(10 + shift, 0.5, rows),
            "city": rng.choice(["Paris", "Lyon", "Nice", SCRIPT] if shift else
                               ["Paris", "Lyon", "Nice"], rows),
            "email": [f"user{i}@example.com" for i in rng.integers(0, 10**6, rows)],
            "signup": pd.Timestamp("2026-01-01") + pd.to_timedelta(
                rng.integers(0, 300 + int(shift * 300), rows), unit="D")})

    reference = Reference.from_frame(frame(3000, shift=0.0), pii={"email": "email"},
                                     source="frame of credit@1")
    windows = []
    for day, shift in enumerate([0.0, 1.0]):
        sketch = WindowSketch.empty(reference)
        sketch.update(pa_table(frame(800, shift=shift)), reference=reference)
        drift = window_drift(reference, sketch, DriftSettings())
        windows.append({
            "model": "credit", "version": 1, "window": "1d", "index": None,
            "start": f"2026-11-{20 + day}T00:00:00+00:00", "rows": 800,
            "drift": drift.to_json(),
            "quality": window_quality(reference, sketch, QualitySettings()).to_json(),
            "performance": {"metric": "roc_auc", "reference": 0.74, "labeled_rows": 0,
                            "realised": None, "estimated": None, "drop": None},
            "sketch": sketch.to_json()})
    report = {"model": "credit", "window": "1d", "reference": {"1": {
        "source": reference.source, "rows": reference.rows,
        **{k: v for k, v in reference.to_json().items() if k in ("features", "prediction")}}},
        "windows": windows, "alerts": []}
    assert windows[0]["drift"]["drifted"] == []
    assert "income" in windows[1]["drift"]["drifted"]
    html_path, json_path = write_report(report, tmp_path, stem="real")
    page, text = html_path.read_text(), json_path.read_text()
    assert "@example.com" not in page and "@example.com" not in text
    assert pii_columns(report) == {"email"}
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions[0] in windows[1]["drift"]["drifted"]
    assert sorted(captions) == sorted(["age", "income", "city", "signup"])
    assert len(_images(page)) == 1 + 4  # drift over time, four features (no PII, no labels)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (" in page  # an unseen city, escaped
    assert _strict(text)["windows"][1]["drift"]["share"] == windows[1]["drift"]["share"]


def pa_table(frame: object) -> object:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_latest_window_is_the_served_versions() -> None:
    import copy

    report = make_report()
    report["served_version"] = 1
    assert "Features in the latest window (2026-11-21, version 1)" in render_report(report)
    # The day a version replaced another: two windows share a start, one line per version.
    overlap = copy.deepcopy(report["windows"][-1])
    overlap["version"] = 3
    report["windows"].append(overlap)
    report["reference"]["3"] = report["reference"]["2"]
    report["served_version"] = 3
    page = render_report(report, max_feature_plots=0)
    assert "Features in the latest window (2026-11-23, version 3)" in page
    assert len(_images(page)) == 2 + 1  # drift and performance over time, the prediction's
