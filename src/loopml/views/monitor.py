"""Monitoring reports and alerts on a terminal (rich) and as JSON.

User text (model, feature and column names, alert messages) goes through
:mod:`loopml.views.text`: no markup, control characters escaped. JSON is strict (NaN and
infinities become null) and holds no value of a personal-data column.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

# the report's tolerant readers of records that are dicts or objects, shared with the page
from loopml.monitor.report_data import _field, _float, _int, _list, alert_window_start
from loopml.views.runs import fmt_time
from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow"}
ALERT_FIELDS = ("id", "model", "version", "window", "start_key", "window_start", "kind",
                "severity", "message", "details", "created_at", "webhook")


def report_json(report: dict[str, Any]) -> str:
    """Return the whole report as strict JSON text (NaN and infinities as null)."""
    from loopml.monitor.report_data import report_json_text

    return report_json_text(report)


def print_summary(console: Console, report: dict[str, Any], *, limit: int = 30) -> None:
    """Print a report: one line about the model and reference, then one row per window.

    Only the newest ``limit`` windows get a row; the HTML report has them all.
    """
    from rich.table import Table

    from loopml.monitor.report_data import alerts_by_window, references, skipped_text

    windows = [w for w in _list(report.get("windows")) if isinstance(w, dict)]
    alerts = _list(report.get("alerts"))
    if not isinstance(report.get("alerts"), list):
        alerts = [a for w in windows for a in _list(w.get("alerts"))]
    rows = sum(_int(w.get("rows")) for w in windows)
    refs = [(f"v{version} " if version else "") + f"{r.get('source') or '-'} "
            f"({_count(r.get('rows'))} rows)" for version, r in references(report).items()]
    served = report.get("served_version")
    console.print(line(("monitor ", "bold"), (str(report.get("model") or "-"), "bold"),
                       " · window ", str(report.get("window") or "-"), " · reference ",
                       "; ".join(refs) or "-",
                       "" if served is None else f" · serving version {served}"))
    console.print(line(f"{len(windows)} window(s), {rows:,} rows, ",
                       (f"{len(alerts)} alert(s)", "red" if alerts else "green")))
    if not windows:
        console.print(line(("no window yet: ", "yellow"),
                           "the prediction log holds no rows for this model in the range"))
        return
    metric = next((str(w["performance"]["metric"]) for w in windows
                   if isinstance(w.get("performance"), dict) and w["performance"].get("metric")),
                  "metric")
    table = Table(title=plain("windows"), title_justify="left")
    # short headers: the table must read on an 80-column terminal
    for header, justify in (("window", "left"), ("v", "right"), ("rows", "right"),
                            ("drift", "right"), ("drifted", "left"),
                            ("quality", "right"), (metric, "right"),
                            ("estimate", "right"), ("alerts", "left")):
        table.add_column(plain(header), justify=justify)
    raised = alerts_by_window({**report, "windows": windows})
    for window, found in list(zip(windows, raised, strict=True))[-limit:]:
        table.add_row(*_window_row(window, found, metric))
    console.print(table)
    if len(windows) > limit:
        console.print(line((f"… {len(windows) - limit} earlier window(s) in the HTML report",
                            "dim")))
    skipped = _list(report.get("skipped"))
    if skipped:
        first = skipped_text(skipped[0])
        console.print(line((f"skipped {len(skipped)} item(s) that could not be read", "yellow"),
                           " (first: ", first if len(first) < 120 else first[:119] + "…", ")"))


def _window_row(window: dict[str, Any], alerts: list[Any], metric: str) -> list[Any]:
    drift = window.get("drift") if isinstance(window.get("drift"), dict) else {}
    quality = window.get("quality") if isinstance(window.get("quality"), dict) else {}
    performance = window.get("performance") if isinstance(window.get("performance"),
                                                          dict) else {}
    drifted = [str(n) for n in _list(drift.get("drifted"))]
    names = ", ".join(n if len(n) <= 40 else n[:39] + "…" for n in drifted[:3]) \
        + (f" +{len(drifted) - 3}" if len(drifted) > 3 else "")
    share = _float(drift.get("share"))
    share_text = "-" if not math.isfinite(share) else f"{share:.1%}"
    issues = len(_list(quality.get("issues")))
    critical = any(_field(a, "severity") == "critical" for a in alerts)
    kinds = ", ".join(dict.fromkeys(str(_field(a, "kind")).replace("prediction_drift",
                                                                    "output drift")
                                    for a in alerts))
    start = (f"#{window['index']}" if window.get("index") is not None
             else _utc(window.get("start")))
    return [plain(start), plain(_opt(window.get("version"), "-")),
            _count(window.get("rows")),
            plain(share_text, "red" if drift.get("dataset_drift") else ""),
            plain(names, "red" if drifted else ""),
            plain(str(issues), "yellow" if issues else ""),
            _number(_metric(performance.get("realised"), metric)),
            _number(_metric(performance.get("estimated"), metric)),
            plain(kinds, SEVERITY_STYLE["critical" if critical else "warning"] if kinds else "")]


def alerts_json(alerts: list[Any]) -> list[dict[str, Any]]:
    """Return alert records (dicts or objects) as strict-JSON-ready dicts, with ``window_start``."""
    from loopml.evaluate.card import json_safe

    out = []
    for alert in alerts:
        record = {key: _field(alert, key) for key in ALERT_FIELDS
                  if _has(alert, key)}
        record["window_start"] = alert_window_start(alert)
        for key, value in record.items():
            if isinstance(value, datetime):
                record[key] = value.isoformat()
        out.append(json_safe(record))
    return out


def alerts_table(alerts: list[Any]) -> Table:
    """Return a table of alert records (dicts or objects with the alert fields)."""
    from rich.table import Table

    table = Table(title=plain(f"{len(alerts)} alert(s)"), title_justify="left")
    for header in ("id", "model", "version", "window", "kind", "severity", "message", "created",
                   "webhook"):
        table.add_column(header)
    for alert in alerts:
        severity = _opt(_field(alert, "severity"))
        table.add_row(plain(_opt(_field(alert, "id"))), plain(_opt(_field(alert, "model"))),
                      plain(_opt(_field(alert, "version"))),
                      plain(_moment(alert_window_start(alert))),
                      plain(_opt(_field(alert, "kind"))),
                      plain(severity, SEVERITY_STYLE.get(severity, "")),
                      plain(_opt(_field(alert, "message"))),
                      plain(_moment(_field(alert, "created_at"))),
                      plain(_opt(_field(alert, "webhook"))))
    return table


def _moment(value: Any) -> str:
    """Return a time as local text; epoch milliseconds and ISO text are accepted.

    >>> _moment(None), _moment("2026-11-30T00:00:00+00:00")[:4]
    ('', '2026')
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith("#"):
        return value
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_time(datetime.fromtimestamp(value / 1000, tz=UTC))
    try:
        return fmt_time(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _utc(value: Any) -> str:
    """Return a window start as UTC minutes (windows are aligned in UTC).

    >>> _utc("2026-11-30T06:00:00+00:00"), _utc(None), _utc("soon")
    ('2026-11-30 06:00', '-', 'soon')
    """
    if value is None:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _opt(value: Any, missing: str = "") -> str:
    return missing if value is None else str(value)


def _has(record: Any, key: str) -> bool:
    return key in record if isinstance(record, dict) else hasattr(record, key)



def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


def _metric(values: Any, metric: str) -> float:
    return _float(values.get(metric)) if isinstance(values, dict) else math.nan


def _number(value: float) -> str:
    """Return a metric value in 4 significant digits, '-' when there is none.

    >>> _number(0.612345), _number(float("nan"))
    ('0.6123', '-')
    """
    return f"{value:.4g}" if math.isfinite(value) else "-"
