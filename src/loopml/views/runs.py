"""Runs on a terminal (rich tables) and as JSON.

Every user string reaches the terminal through :mod:`loopml.views.text` (no markup, control
characters escaped); JSON keeps the stored text, which ``json.dumps`` escapes itself.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.store.records import MetricPoint, RunDetail, RunRecord
from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

STATUS_STYLE = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}
MAX_METRIC_COLUMNS = 6


def fmt_value(value: float) -> str:
    """Return a metric value in at most ~6 significant digits.

    >>> fmt_value(0.912345678)
    '0.912346'
    """
    if math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def fmt_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    """Return a short duration.

    >>> fmt_duration(3725.0)
    '1h02m'
    """
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def point_json(point: MetricPoint) -> dict[str, Any]:
    return {"key": point.key, "step": point.step, "value": _json_number(point.value),
            "timestamp_ms": point.timestamp_ms}


def run_json(record: RunRecord, latest: dict[str, MetricPoint]) -> dict[str, Any]:
    return {
        "id": record.id,
        "project": record.project,
        "name": record.name,
        "status": record.status,
        "parent_id": record.parent_id,
        "start_time": record.start_time.isoformat(),
        "end_time": record.end_time.isoformat() if record.end_time else None,
        "duration_s": record.duration_s,
        "error": record.error,
        "host": record.host,
        "pid": record.pid,
        "metrics": {key: _json_number(p.value) for key, p in latest.items()},
    }


def detail_json(detail: RunDetail) -> dict[str, Any]:
    out = run_json(detail.run, detail.metrics)
    out["metrics"] = {key: point_json(p) for key, p in detail.metrics.items()}
    out["params"] = detail.params
    out["tags"] = detail.tags
    out["artifacts"] = [
        {"name": a.name, "sha256": a.sha256, "size": a.size, "media_type": a.media_type}
        for a in detail.artifacts
    ]
    out["children"] = detail.children
    return out


def runs_table(records: list[RunRecord], latest: dict[str, dict[str, MetricPoint]]) -> Table:
    """Return a table of runs with up to MAX_METRIC_COLUMNS common metric columns."""
    from rich.table import Table

    keys: dict[str, int] = {}
    for points in latest.values():
        for key in points:
            keys[key] = keys.get(key, 0) + 1
    metric_keys = sorted(keys, key=lambda k: (-keys[k], k))[:MAX_METRIC_COLUMNS]
    show_project = len({r.project for r in records}) > 1
    table = Table(title=plain(f"{len(records)} run(s)"), title_justify="left")
    table.add_column("id", no_wrap=True)
    if show_project:
        table.add_column("project")
    table.add_column("name", min_width=8)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("time", no_wrap=True, justify="right")
    for key in metric_keys:
        table.add_column(plain(key), justify="right", min_width=8, overflow="fold")
    for record in records:
        points = latest.get(record.id, {})
        table.add_row(
            record.id[:12], *([plain(record.project)] if show_project else []),
            plain(record.name), _status(record.status), fmt_time(record.start_time)[5:16],
            fmt_duration(record.duration_s),
            *(fmt_value(points[k].value) if k in points else "" for k in metric_keys),
        )
    return table


def _status(status: str) -> Text:
    return plain(status, STATUS_STYLE.get(status, "white"))


def print_detail(console: Console, detail: RunDetail) -> None:
    """Print one run as a header and small tables."""
    from rich.table import Table

    run = detail.run
    console.print(line((run.name, "bold"), f"  {run.id}  ", _status(run.status)))
    console.print(line(
        f"project {run.project} · started {fmt_time(run.start_time)} · "
        f"duration {fmt_duration(run.duration_s) or 'running'} · host {run.host} pid {run.pid}"
    ))
    if run.parent_id:
        console.print(line(f"parent run {run.parent_id}"))
    if run.error:
        console.print(line(("error:", "red"), " ", plain(run.error, newlines=True)))
    sections: list[tuple[str, list[str], list[tuple[str, ...]]]] = [
        ("params", ["key", "value"], list(detail.params.items())),
        ("metrics (latest)", ["key", "value", "step"],
         [(k, fmt_value(p.value), str(p.step)) for k, p in detail.metrics.items()]),
        ("tags", ["key", "value"], list(detail.tags.items())),
        ("artifacts", ["name", "size", "sha256"],
         [(a.name, f"{a.size:,}", a.sha256[:16]) for a in detail.artifacts]),
        ("child runs", ["id"], [(c,) for c in detail.children]),
    ]
    for title, headers, rows in sections:
        if not rows:
            continue
        table = Table(title=plain(title), title_justify="left")
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*(plain(cell) for cell in row))
        console.print(table)


def compare_json(details: list[RunDetail]) -> dict[str, Any]:
    return {
        "runs": [d.run.id for d in details],
        "params": {k: [d.params.get(k) for d in details] for k in _keys(details, "params")},
        "metrics": {
            k: [_json_number(d.metrics[k].value) if k in d.metrics else None for d in details]
            for k in _keys(details, "metrics")
        },
    }


def compare_table(details: list[RunDetail]) -> Table:
    """Return params and metrics of several runs side by side; differing rows in bold."""
    from rich.table import Table

    table = Table(title=plain("compare"), title_justify="left")
    table.add_column("")
    for detail in details:
        table.add_column(plain(detail.run.name) + f"\n{detail.run.id[:12]}", justify="right")
    for section in ("params", "metrics"):
        keys = _keys(details, section)
        if keys:
            table.add_section()
            table.add_row(plain(section, "dim"), *([""] * len(details)))
        for key in keys:
            cells = []
            for detail in details:
                if section == "params":
                    cells.append(detail.params.get(key, "—"))
                else:
                    point = detail.metrics.get(key)
                    cells.append(fmt_value(point.value) if point else "—")
            style = "bold" if len(set(cells)) > 1 else "dim"
            table.add_row(plain(key, style), *(plain(c, style) for c in cells))
    return table


def _keys(details: list[RunDetail], section: str) -> list[str]:
    keys: set[str] = set()
    for detail in details:
        keys.update(getattr(detail, section))
    return sorted(keys)


def history_table(key: str, points: list[MetricPoint]) -> Table:
    from rich.table import Table

    table = Table(title=line(key, f": {len(points)} point(s)"), title_justify="left")
    for header in ("step", "value", "time"):
        table.add_column(header, justify="right")
    for point in points:
        moment = datetime.fromtimestamp(point.timestamp_ms / 1000)
        table.add_row(str(point.step), fmt_value(point.value), moment.strftime("%H:%M:%S.%f")[:-3])
    return table
