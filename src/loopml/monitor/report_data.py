"""The monitoring report as data: its references, alerts per window, personal-data columns, JSON.

The report is the dict the runner builds (its shape is drawn in
:mod:`loopml.monitor.report_html`). Every field may be missing or None: these functions read
what there is. Privacy: a column marked as personal data (``pii`` on its reference, its drift
result or its quality row) is found by :func:`pii_columns`, and :func:`report_data` drops every
value of it from the JSON. The small readers at the end (``_get``, ``_list``, ``_float`` …,
``_clean`` for names without control characters) serve the HTML page and its plots too.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from loopml.evaluate.card import json_safe

__all__ = ["alerts_by_window", "pii_columns", "reference_for", "references", "report_data",
           "report_json_text", "skipped_text"]

# C0/C1 control characters, line separators and bidirectional overrides: a name must read in
# the page as it is stored (no "Trojan source"); tabs and line breaks become spaces.
_CONTROL: dict[int, str | None] = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
     *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_CONTROL.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


# Label length in plots: longer names are cut (the tables show them whole).
_LABEL = 40


def pii_columns(report: dict[str, Any]) -> set[str]:
    """Return the names of the columns the report marks as personal data.

    >>> sorted(pii_columns({"reference": {"features": {"email": {"pii": "email"}, "age": {}}}}))
    ['email']
    """
    names = {str(n) for n in _list(report.get("pii"))}
    for reference in references(report).values():
        for name, ref in _features_of(reference).items():
            if isinstance(ref, dict) and ref.get("pii"):
                names.add(name)
    for window in _list(report.get("windows")):
        if not isinstance(window, dict):
            continue
        for feature in _list(_get(window, "drift", "features")):
            note = str(feature.get("note") or "").lower() if isinstance(feature, dict) else ""
            if isinstance(feature, dict) and (feature.get("pii") or (
                    feature.get("monitored") is False
                    and ("pii" in note or "personal data" in note))):
                names.add(str(feature.get("name")))
        for column in _list(_get(window, "quality", "columns")):
            if isinstance(column, dict) and column.get("pii"):
                names.add(str(column.get("name")))
    return names


def report_data(report: dict[str, Any]) -> dict[str, Any]:
    """Return the report as strict-JSON-ready data, with every value of a PII column removed.

    NaN and infinities become None; a PII column keeps its name, kind and counts, and loses its
    bins, categories, ranges and unseen values wherever they appear.
    """
    pii = pii_columns(report)
    data = json_safe(report)
    if not pii or not isinstance(data, dict):
        return data
    keep = {"name", "kind", "rows", "count", "missing", "missing_share", "pii", "monitored",
            "note", "invalid", "invalid_share", "ref_missing_share"}

    def scrub(entry: Any, name: str) -> Any:
        if name not in pii or not isinstance(entry, dict):
            return entry
        return {k: v for k, v in entry.items() if k in keep}

    for reference in references(data).values():
        if isinstance(reference.get("features"), dict):
            reference["features"] = {n: scrub(f, n) for n, f in reference["features"].items()}
    for window in _list(data.get("windows")):
        if not isinstance(window, dict):
            continue
        sketch = window.get("sketch")
        if isinstance(sketch, dict) and isinstance(sketch.get("features"), dict):
            sketch["features"] = {n: scrub(f, n) for n, f in sketch["features"].items()}
        quality = window.get("quality")
        if isinstance(quality, dict) and isinstance(quality.get("columns"), list):
            quality["columns"] = [scrub(c, str(c.get("name"))) if isinstance(c, dict) else c
                                  for c in quality["columns"]]
    return data


def report_json_text(report: dict[str, Any]) -> str:
    """Return the report as strict JSON text (no NaN, PII values removed)."""
    return json.dumps(report_data(report), indent=2, ensure_ascii=False, default=str,
                      allow_nan=False)


def skipped_text(item: Any) -> str:
    """Return one skipped item (``{"path", "reason"}`` or any value) as one line.

    >>> skipped_text({"path": "2026-11-21/a.parquet", "reason": "torn"})
    '2026-11-21/a.parquet: torn'
    """
    if isinstance(item, dict) and "path" in item:
        return f"{item['path']}: {item.get('reason') or 'unreadable'}"
    if isinstance(item, dict):
        return json.dumps(json_safe(item), default=str, ensure_ascii=False)
    return str(item)


def references(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the report's references by version ("" when one serves every version).

    >>> references({"reference": {"source": "profile of credit@1", "rows": 10}})
    {'': {'source': 'profile of credit@1', 'rows': 10}}
    >>> list(references({"reference": {"1": {"source": "a"}, "2": {"source": "b"}}}))
    ['1', '2']
    """
    reference = report.get("reference") if isinstance(report, dict) else None
    if not isinstance(reference, dict):
        return {}
    if any(k in reference for k in ("source", "rows", "features", "prediction")):
        return {"": reference}
    return {str(k): v for k, v in reference.items() if isinstance(v, dict)}


def reference_for(report: dict[str, Any], version: Any) -> dict[str, Any]:
    """Return the reference a window of ``version`` is compared with ({} when unknown)."""
    found = references(report)
    return found.get(str(version)) or found.get("") or {}


def _features_of(reference: dict[str, Any]) -> dict[str, Any]:
    features = reference.get("features") if isinstance(reference, dict) else None
    if isinstance(features, dict):
        return features
    return {str(f.get("name")): f for f in _list(features) if isinstance(f, dict)}


def _all_alerts(report: dict[str, Any], windows: list[dict[str, Any]]) -> list[Any]:
    """Return the report's alerts, or those of its windows when it lists none itself."""
    if isinstance(report.get("alerts"), list):
        return list(report["alerts"])
    return [{**a, "window_start": w.get("start"), "version": w.get("version")}
            for w in windows for a in _list(w.get("alerts")) if isinstance(a, dict)]


def alerts_by_window(report: dict[str, Any]) -> list[list[Any]]:
    """Return, for each window of the report (same order), the alerts it raised.

    Stored alerts name their window by ``version`` and ``start_key`` (epoch milliseconds of
    a time window's start, a row window's number); a report without alerts of its own
    lends each window its ``alerts``.
    """
    windows = [w for w in _list(report.get("windows")) if isinstance(w, dict)]
    if not isinstance(report.get("alerts"), list):
        return [[a for a in _list(w.get("alerts")) if isinstance(a, dict)] for w in windows]
    slots: dict[tuple[str, tuple[str, int]], int] = {}
    for number, window in enumerate(windows):
        if isinstance(window.get("index"), int):
            slots[(str(window.get("version")), ("rows", window["index"]))] = number
        start = _epoch_ms(window.get("start"))
        if start is not None:
            slots[(str(window.get("version")), ("time", start))] = number
    out: list[list[Any]] = [[] for _ in windows]
    for alert in report["alerts"]:
        version = str(_field(alert, "version"))
        for key in _alert_keys(alert):
            if (version, key) in slots:
                out[slots[(version, key)]].append(alert)
                break
    return out


def _alert_keys(alert: Any) -> list[tuple[str, int]]:
    keys = []
    key = _field(alert, "start_key")
    if isinstance(key, int) and not isinstance(key, bool):
        kind = None
        try:
            from loopml.monitor.settings import parse_window

            kind, _ = parse_window(str(_field(alert, "window")))
        except ValueError:
            pass
        keys += [(kind, key)] if kind else [("rows", key), ("time", key)]
    start = _epoch_ms(_field(alert, "window_start") or _field(alert, "start"))
    if start is not None:
        keys.append(("time", start))
    return keys


def _epoch_ms(moment: Any) -> int | None:
    """Return an ISO time (or datetime) as epoch milliseconds, None when it is not one.

    >>> _epoch_ms("2026-12-01T00:00:00+00:00"), _epoch_ms("soon")
    (1796083200000, None)
    """
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return None
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _latest(report: dict[str, Any], windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the newest window of the served version (of any version when none is named)."""
    served = report.get("served_version")
    own = [w for w in windows if served is not None and str(w.get("version")) == str(served)]
    return (own or windows)[-1]


def _label(window: dict[str, Any], *, end: bool = False) -> str:
    """Return a short name for a window: its number for row windows, else its start time.

    >>> _label({"start": "2026-11-30T00:00:00+00:00"}), _label({"index": 3, "start": "x"})
    ('2026-11-30', '#3')
    """
    if window.get("index") is not None:
        return f"#{window['index']}"
    moment = window.get("end" if end else "start")
    if not isinstance(moment, str):
        return "—" if moment is None else str(moment)
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0):
        return parsed.strftime("%Y-%m-%d")
    return parsed.strftime("%Y-%m-%d %H:%M")


# --- small helpers ---------------------------------------------------------------------------

def _clean(value: Any) -> str:
    """Return ``value`` as text without control characters.

    >>> _clean("a\\x1b[2Jb\\u202e\\tc")
    'a[2Jb c'
    """
    return str(value).translate(_CONTROL)


def _short(text: Any, limit: int = _LABEL) -> str:
    text = _clean(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def alert_window_start(alert: Any) -> Any:
    """Return when an alert's window starts: as given, else from a stored alert's ``start_key``.

    A time window's key is its start in epoch milliseconds, a row window's is its number.

    >>> alert_window_start({"window": "1d", "start_key": 1796083200000})
    '2026-12-01T00:00:00+00:00'
    >>> alert_window_start({"window": "10000rows", "start_key": 3}), alert_window_start({})
    ('#3', None)
    """
    start = _field(alert, "window_start") or _field(alert, "start")
    key = _field(alert, "start_key")
    if start is not None or not isinstance(key, int) or isinstance(key, bool):
        return start
    from loopml.monitor.settings import parse_window

    try:
        kind, _ = parse_window(str(_field(alert, "window")))
    except ValueError:
        return f"#{key}"
    if kind == "rows":
        return f"#{key}"
    return datetime.fromtimestamp(key / 1000, tz=UTC).isoformat()


def _field(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else getattr(record, key, None)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0
