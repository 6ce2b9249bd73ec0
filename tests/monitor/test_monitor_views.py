"""Monitoring on the terminal: the window summary, the alerts table, strict JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from rich.console import Console
from test_report_html import SCRIPT, SECRET, make_report

from loopml.store.monitoring import AlertRecord
from loopml.views.monitor import alerts_json, alerts_table, print_summary, report_json


def _console() -> Console:
    return Console(record=True, width=220, color_system=None)


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_summary_shows_one_row_per_window_with_its_numbers() -> None:
    report = make_report()
    console = _console()
    print_summary(console, report)
    text = console.export_text()
    assert ("monitor credit · window 1d · reference v1 profile of credit@1 (5,000 rows); "
            "v2 profile of credit@2 (5,000 rows) · serving version 2") in text
    assert f"4 window(s), {sum(w['rows'] for w in report['windows']):,} rows, 4 alert(s)" in text
    rows = [line for line in text.splitlines() if line.lstrip("│ ").startswith("2026-11-")]
    assert len(rows) == 4
    first, third = rows[0], rows[2]
    assert "2026-11-20 00:00" in first and "1,200" in first and "0.0%" in first
    assert "0.73" in first  # realised and estimated roc_auc
    # 2 drifted of 6 monitored features, named; the realised 0.61 beside the estimate 0.64.
    share = 2 / 6
    assert f"{share:.1%}" in third and "income, city" in third
    assert "0.61" in third and "0.64" in third and "drift, performance" in third
    assert "roc_auc" in text and "estimate" in text
    assert "skipped 1 item(s) that could not be read (first: 2026-11-21/bad.parquet: not Parquet)" \
        in text


def test_summary_of_the_design_shape_takes_alerts_from_windows() -> None:
    report = make_report(windows=3, stored=False)
    del report["alerts"]
    console = _console()
    print_summary(console, report)
    text = console.export_text()
    assert "reference profile of credit@1 (5,000 rows)" in text and "4 alert(s)" in text
    rows = [line for line in text.splitlines() if line.lstrip("│ ").startswith("2026-11-")]
    assert ["drift, performance" in row for row in rows] == [False, True, True]


def test_summary_limits_rows_and_handles_an_empty_report() -> None:
    console = _console()
    print_summary(console, make_report(windows=6), limit=2)
    text = console.export_text()
    assert "… 4 earlier window(s) in the HTML report" in text
    assert "2026-11-20" not in text.split("window(s), ")[1]
    console = _console()
    print_summary(console, {"model": "m", "windows": []})
    assert "no window yet" in console.export_text()


def test_user_text_is_never_markup() -> None:
    report = make_report(windows=1)
    report["model"] = "[bold red]m[/]\x1b[2J"
    report["windows"][0]["drift"]["drifted"] = ["[link=http://x]a[/link]", SCRIPT, "x" * 300]
    console = _console()
    print_summary(console, report)
    text = console.export_text()
    assert "[bold red]m[/]\\x1b[2J" in text
    assert "[link=http://x]a[/link]" in text
    assert "x" * 39 + "…" in text and "x" * 41 not in text
    assert "\x1b" not in text


def test_alerts_table_takes_dicts_and_records() -> None:
    created = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    alerts = [{"id": 0, "model": "credit", "version": 2,
               "window_start": "2026-11-22T00:00:00+00:00",
               "kind": "drift", "severity": "critical", "message": "income [red]drifted[/]\x07",
               "created_at": created, "webhook": "sent 200"},
              SimpleNamespace(id=2, model="credit", version=2, window_start=created,
                              kind="performance", severity="warning",
                              message="roc_auc 0.61 < 0.74 - 0.05", created_at=created,
                              webhook=None),
              AlertRecord(id=3, model="credit", version=3, window="1d",
                          start_key=1796083200000, kind="quality", severity="warning",
                          message="city: 8.3% unseen", details={"share": 0.083,
                                                                 "p": float("nan")},
                          created_at=created, webhook="failed: timeout"),
              AlertRecord(id=4, model="credit", version=3, window="500rows", start_key=7,
                          kind="drift", severity="critical", message="rows", details={},
                          created_at=created, webhook=None)]
    console = _console()
    console.print(alerts_table(alerts))
    text = console.export_text()
    assert "4 alert(s)" in text
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
             if "credit" in line]
    assert [c[0] for c in cells] == ["0", "2", "3", "4"]
    assert cells[3][3] == "#7" and cells[2][3].startswith(("2026-11-30", "2026-12-01"))
    assert "income [red]drifted[/]\\x07" in text
    assert "roc_auc 0.61 < 0.74 - 0.05" in text and "sent 200" in text
    data = _strict(json.dumps(alerts_json(alerts)))
    assert data[0]["created_at"] == "2026-11-30T07:00:00+00:00"
    assert data[1]["window_start"] == created.isoformat() and data[1]["webhook"] is None
    assert data[2]["window_start"] == "2026-12-01T00:00:00+00:00"
    assert data[2]["details"] == {"share": 0.083, "p": None}
    assert data[3]["window_start"] == "#7"


def test_report_json_is_strict_without_pii_values() -> None:
    report = make_report()
    text = report_json(report)
    data = _strict(text)
    assert SECRET not in text
    assert data["windows"][3]["performance"]["realised"] == {"roc_auc": None}
    assert data["windows"][0]["quality"]["columns"][2]["invalid_share"] is None
    assert data["model"] == "credit" and len(data["windows"]) == 4
