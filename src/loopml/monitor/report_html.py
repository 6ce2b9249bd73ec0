"""The monitoring report: one self-contained HTML page with plots, and the same content as JSON.

The input is the whole report the runner builds (see the monitor design)::

    {"model", "window", "log_dir", "generated_at", "served_version"?, "rule"?, "settings"?,
     "reference": {"<version>": {"source", "rows", "features": {name: FeatureRef JSON},
                                 "prediction", "test_metrics"}, ...},
     "windows": [window result, oldest first], "alerts": [...], "skipped": [...]}

(``reference`` may also be one reference for every version: ``{"source", "rows", ...}``).
Each window result carries ``drift`` (``DriftResult.to_json()``), ``quality``
(``QualityResult.to_json()``), ``performance``, and may carry its ``sketch``
(``WindowSketch.to_json()``), which the distribution plots compare with its version's
reference bins. Alerts are the report's (stored alerts: ``window`` + ``start_key``) or, when
it lists none, the windows' own. Every field may be missing or None: the page shows what
there is.

Privacy: a column marked as personal data (``pii`` on its reference, its drift result or its
quality row) is named but never shown with a value: no distribution plot, no unseen values, and
:func:`report_data` drops them from the JSON too. Every user string is stripped of control
characters and HTML-escaped; plots are inline PNG data, so the file opens offline.

The data side (references, alerts per window, personal-data columns, JSON) is in
:mod:`loopml.monitor.report_data`, the figures in :mod:`loopml.monitor.report_plots`; their
public names are importable from here too.
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.evaluate.card import _STYLE, _plain
from loopml.files import publish
from loopml.monitor.report_data import (
    _all_alerts,
    _clean,
    _features_of,
    _field,
    _float,
    _get,
    _int,
    _label,
    _latest,
    _list,
    _short,
    alert_window_start,
    alerts_by_window,
    pii_columns,
    reference_for,
    references,
    report_data,
    report_json_text,
    skipped_text,
)
from loopml.monitor.report_plots import (
    _PALETTE,
    _by_version,
    _distribution,
    _image,
    _time_axis,
    _window_axis,
)

# The data side's names are re-exported: code imported them from here.
__all__ = ["alerts_by_window", "pii_columns", "reference_for", "references", "render_report",
           "report_data", "report_json_text", "skipped_text", "write_report"]

_EXTRA_STYLE = """
td{overflow-wrap:anywhere;max-width:28rem} .num{text-align:right;font-variant-numeric:tabular-nums}
.drift{color:#c0392b;font-weight:600} .ok{color:#2e7d32} .critical{color:#c0392b;font-weight:600}
.warning{color:#b7791f;font-weight:600} .note{color:#777} .plots{display:flex;flex-wrap:wrap;
gap:.5rem} .plots figure{margin:0} figcaption{font-size:.8rem;color:#555;max-width:26rem;
overflow-wrap:anywhere} summary{cursor:pointer;color:#555}
"""


# Effect-size columns of the feature table: key in FeatureDrift JSON, header.
_EFFECTS = (("wasserstein_norm", "Wasserstein/std"), ("js_distance", "JS distance"),
            ("psi", "PSI"))


def render_report(report: dict[str, Any], *, max_feature_plots: int = 24) -> str:
    """Return the monitoring report as one self-contained HTML page.

    ``max_feature_plots`` caps the per-feature distribution plots (drifted features first,
    then the largest effects), so a model with hundreds of features stays a small file.
    """
    report = report if isinstance(report, dict) else {}
    windows = [w for w in _list(report.get("windows")) if isinstance(w, dict)]
    pii = pii_columns(report)
    model = _text(report.get("model") or "model")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring: {model}"
             f"</title><style>{_STYLE}{_EXTRA_STYLE}</style></head><body>",
             f"<h1>Monitoring report — {model}</h1>"]
    parts.append(_summary(report, windows))
    parts.append(_alerts(report, windows))
    parts.append(_drift_over_time(report, windows))
    parts.append(_performance_over_time(windows))
    if windows:
        parts.append(_features(report, _latest(report, windows), pii, max_feature_plots))
    parts.append(_prediction(report, windows))
    if windows:
        parts.append(_quality(report, windows, pii))
    parts.append(_skipped(report))
    parts.append("</body></html>")
    return "".join(parts)


def write_report(report: dict[str, Any], folder: str | Path, *, stem: str,
                 overwrite: bool = True, max_feature_plots: int = 24) -> tuple[Path, Path]:
    """Return the paths of ``<stem>.html`` and ``<stem>.json`` written into ``folder``.

    Both are rendered before anything is written, and each file appears whole or not at all
    (written to a temporary name in the same folder, flushed, then renamed).
    """
    if (not isinstance(stem, str) or not stem.strip() or stem in {".", ".."}
            or re.search(r"[/\\\x00-\x1f]", stem)):
        raise InvalidInput(f"report stem {stem!r} is not a plain file name; give a name without "
                           "slashes or control characters, such as 'credit-2026-11-30'")
    page = render_report(report, max_feature_plots=max_feature_plots)
    text = report_json_text(report)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    _write_atomic(json_path, text, overwrite=overwrite)
    _write_atomic(html_path, page, overwrite=overwrite)
    return html_path, json_path


def _write_atomic(target: Path, text: str, *, overwrite: bool) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # A lone surrogate (JSON text may hold one) is written as its escape, not an error.
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        publish(Path(temp), target, overwrite=overwrite, what="report")
    finally:
        # publish links rather than moves when it must not overwrite: the temp name goes.
        Path(temp).unlink(missing_ok=True)


# --- sections --------------------------------------------------------------------------------

def _summary(report: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    alerts = _all_alerts(report, windows)
    critical = sum(1 for a in alerts if _field(a, "severity") == "critical")
    versions = sorted({str(w.get("version")) for w in windows if w.get("version") is not None})
    rows = sum(_int(w.get("rows")) for w in windows)
    span = (f"{_text(_label(windows[0]))} … {_text(_label(windows[-1], end=True))}"
            if windows else "—")
    facts = [("model", _text(report.get("model") or "—")),
             ("window", _text(report.get("window") or "—")),
             ("windows", f"{len(windows)} ({span})"),
             ("versions", _text(", ".join(versions) or "—")),
             ("rows", f"{rows:,}"),
             ("reference", "<br>".join(
                 (f"version {_text(v)}: " if v else "") + f"{_text(r.get('source') or '—')} "
                 f"({_num(r.get('rows'))} rows)" for v, r in references(report).items())
              or "—"),
             ("served version", _text(report.get("served_version"))),
             ("alerts", f"{len(alerts)} ({critical} critical)"),
             ("prediction log", _text(report.get("log_dir") or "—")),
             ("generated", _text(report.get("generated_at") or "—"))]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    latest = _get(_latest(report, windows), "drift", "rule") if windows else None
    rule = f"<p>{_rule_text(report)}</p>"
    if latest:
        rule += f"<p class='meta'>In the latest window: {_text(latest)}</p>"
    return f"<h2>Summary</h2><table>{body}</table><h3>How drift is decided</h3>{rule}"


def _rule_text(report: dict[str, Any]) -> str:
    """Return, in words, the rule that decides drift (with the thresholds when known)."""
    settings = report.get("settings") if isinstance(report.get("settings"), dict) else {}
    drift = settings.get("drift") if isinstance(settings.get("drift"), dict) else settings
    known = all(k in drift for k in ("large_sample_rows", "wasserstein", "jensen_shannon", "psi",
                                     "alpha", "correction", "share"))
    if not known and isinstance(report.get("rule"), str) and report["rule"].strip():
        rule = _clean(report["rule"]).strip()
        return _text(rule[:1].upper() + rule[1:] + ("" if rule.endswith(".") else "."))
    if not known:
        return ("Large windows (and references) are judged by effect sizes: a number drifts when "
                "its Wasserstein distance over the reference's standard deviation or its PSI "
                "reaches a threshold, a category when its Jensen–Shannon distance or PSI does. "
                "Smaller windows are judged by tests (Kolmogorov–Smirnov for numbers, "
                "chi-squared for categories), with the p-values corrected for testing many "
                "features at once. A window drifts when a set share of its monitored features "
                "drift. Every statistic is reported; the table says which rule decided.")
    correction = {"holm": "Holm's correction", "bh": "the Benjamini–Hochberg correction",
                  "none": "no correction"}.get(str(drift["correction"]), _text(drift["correction"]))
    min_rows = drift.get("min_rows")
    return (f"Windows and references of at least {_num(drift['large_sample_rows'])} rows are "
            f"judged by effect sizes: a number drifts when its Wasserstein distance over the "
            f"reference's standard deviation is ≥ {_num(drift['wasserstein'])} or its PSI ≥ "
            f"{_num(drift['psi'])}; a category when its Jensen–Shannon distance is ≥ "
            f"{_num(drift['jensen_shannon'])} or its PSI ≥ {_num(drift['psi'])}. Smaller windows "
            f"are judged by tests (Kolmogorov–Smirnov for numbers, chi-squared for categories) "
            f"at α = {_num(drift['alpha'])} after {correction} across the window's features. "
            f"A window drifts when at least {_share(drift['share'])} of its monitored features "
            f"drift" + (f"; windows of fewer than {_num(min_rows)} rows get no verdict."
                        if min_rows is not None else "."))


def _alerts(report: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    alerts = _all_alerts(report, windows)
    if not alerts:
        return "<h2>Alerts</h2><p class='ok'>No rule was crossed.</p>"
    rows = []
    for alert in alerts:
        severity = str(_field(alert, "severity") or "")
        rows.append(f"<tr><td>{_text(_alert_start(alert))}</td>"
                    f"<td>{_text(_field(alert, 'version'))}</td>"
                    f"<td>{_text(_field(alert, 'kind') or '')}</td>"
                    f"<td class='{_css(severity)}'>{_text(severity)}</td>"
                    f"<td>{_text(_field(alert, 'message') or '')}</td></tr>")
    return (f"<h2>Alerts ({len(alerts)})</h2><table><tr><th>window</th><th>version</th>"
            f"<th>kind</th><th>severity</th><th>message</th></tr>{''.join(rows)}</table>")


def _drift_over_time(report: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    if not windows:
        return "<h2>Drift over time</h2><p class='note'>No window in this report.</p>"
    shares = [_float(_get(w, "drift", "share")) for w in windows]
    threshold = _float(_get(report, "settings", "drift", "share"))
    parts = ["<h2>Drift over time</h2>"]
    if any(not math.isnan(s) for s in shares):
        def draw(ax: Any) -> None:
            xs = _time_axis(windows)
            for i, (suffix, x, y) in enumerate(_by_version(windows, xs, shares)):
                ax.plot(x, y, marker="o", ms=3, color=_PALETTE[i % len(_PALETTE)],
                        label=suffix.strip(" ()") or "share of drifted features")
            if math.isfinite(threshold):
                ax.axhline(threshold, ls=":", c="#c0392b", label="window drifts at")
            _window_axis(ax, windows, xs)
            ax.set(title="Share of drifted features per window", ylim=(-0.02, 1.02))
            ax.legend(fontsize=7, loc="best")

        parts.append(_image(draw, (7.5, 2.8)))
    rows = []
    for window, alerts in zip(windows, alerts_by_window({**report, "windows": windows}),
                              strict=True):
        drift = window.get("drift") if isinstance(window.get("drift"), dict) else {}
        drifted = [str(n) for n in _list(drift.get("drifted"))]
        kinds = ", ".join(sorted({str(_field(a, "kind")) for a in alerts}))
        prediction = drift.get("prediction") if isinstance(drift.get("prediction"), dict) else {}
        verdict = drift.get("dataset_drift")
        rows.append(
            f"<tr><td>{_text(_label(window))}</td><td>{_text(window.get('version'))}</td>"
            f"<td class='num'>{_num(window.get('rows'))}</td>"
            f"<td class='num'>{_share(drift.get('share'))}</td>"
            f"<td class='num'>{len(drifted)} / {_num(drift.get('monitored'))}</td>"
            f"<td>{_verdict(verdict)}</td><td>{_verdict(prediction.get('drifted'))}</td>"
            f"<td>{_text(_names(drifted, 8))}</td><td>{_text(kinds)}</td></tr>")
    parts.append("<table><tr><th>window</th><th>version</th><th>rows</th><th>drift share</th>"
                 "<th>drifted / monitored</th><th>window drifts</th><th>prediction drifts</th>"
                 f"<th>drifted features</th><th>alerts</th></tr>{''.join(rows)}</table>")
    return "".join(parts)


def _performance_over_time(windows: list[dict[str, Any]]) -> str:
    performances = [w.get("performance") if isinstance(w.get("performance"), dict) else {}
                    for w in windows]
    if not any(performances):
        return ("<h2>Performance over time</h2><p class='note'>No performance figures (no "
                "labels and no estimate).</p>")
    metric = next((str(p["metric"]) for p in performances if p.get("metric")), "metric")
    realised = [_metric(p.get("realised"), metric) for p in performances]
    estimated = [_metric(p.get("estimated"), metric) for p in performances]
    reference = [_float(p.get("reference")) for p in performances]
    parts = ["<h2>Performance over time</h2>"]
    if all(math.isnan(v) for v in realised + estimated):
        parts.append("<p class='note'>No window has a realised figure (not enough labelled "
                     "rows yet) or an estimate.</p>")
    if any(not math.isnan(v) for v in realised + estimated):
        def draw(ax: Any) -> None:
            xs = _time_axis(windows)
            series = zip(_by_version(windows, xs, realised), _by_version(windows, xs, estimated),
                         _by_version(windows, xs, reference), strict=True)
            from matplotlib.lines import Line2D

            # Line styles say what a figure is, colours which version: one legend entry each.
            handles = [Line2D([], [], c="grey", marker="o", ms=3, label="realised (labels)"),
                       Line2D([], [], c="grey", marker="s", ms=3, ls=":",
                              label="estimated (confidence)"),
                       Line2D([], [], c="grey", ls="--", label="model card (test)")]
            for i, ((suffix, x, real), (_, _, guess), (_, _, card)) in enumerate(series):
                colour = _PALETTE[i % len(_PALETTE)]
                ax.plot(x, card, ls="--", c=colour, alpha=0.6)
                ax.plot(x, real, marker="o", ms=3, c=colour)
                ax.plot(x, guess, marker="s", ms=3, ls=":", c=colour)
                if suffix:
                    handles.append(Line2D([], [], c=colour, lw=4, label=suffix.strip(" ()")))
            _window_axis(ax, windows, xs)
            ax.set(title=_plain(_clean(metric)) + " per window")
            ax.legend(handles=handles, fontsize=7, loc="best")

        parts.append(_image(draw, (7.5, 2.8)))
    rows = []
    for window, p in zip(windows, performances, strict=True):
        rows.append(
            f"<tr><td>{_text(_label(window))}</td><td>{_text(window.get('version'))}</td>"
            f"<td class='num'>{_num(p.get('labeled_rows'))}</td>"
            f"<td class='num'>{_num(_metric(p.get('realised'), metric))}</td>"
            f"<td class='num'>{_num(_metric(p.get('estimated'), metric))}</td>"
            f"<td class='num'>{_num(p.get('reference'))}</td>"
            f"<td class='num'>{_num(p.get('drop'))}</td>"
            f"<td class='num'>{_num(p.get('estimated_drop'))}</td></tr>")
    parts.append(f"<table><tr><th>window</th><th>version</th><th>labelled rows</th>"
                 f"<th>{_text(metric)} realised</th><th>estimated</th><th>model card</th>"
                 f"<th>drop</th><th>estimated drop</th></tr>{''.join(rows)}</table>")
    return "".join(parts)


def _features(report: dict[str, Any], window: dict[str, Any], pii: set[str],
              max_plots: int) -> str:
    features = [f for f in _list(_get(window, "drift", "features")) if isinstance(f, dict)]
    parts = [f"<h2>Features in the latest window ({_text(_label(window))}, version "
             f"{_text(window.get('version'))})</h2>"]
    if features:
        ordered = sorted(features, key=lambda f: (not f.get("drifted"), -_effect(f)))
        rows = []
        for f in ordered:
            name = str(f.get("name"))
            effects = "".join(f"<td class='num'>{_num(f.get(k))}</td>" for k, _ in _EFFECTS)
            note = f.get("note") or ("personal data: not monitored" if name in pii else "")
            rows.append(
                f"<tr><td>{_text(name)}</td><td>{_text(f.get('kind') or '')}</td>"
                f"<td class='num'>{_num(f.get('rows'))}</td>"
                f"<td>{_text(f.get('test') or '—')}</td>"
                f"<td class='num'>{_num(f.get('statistic'))}</td>"
                f"<td class='num'>{_num(f.get('p_value'))}</td>"
                f"<td class='num'>{_num(f.get('p_adjusted'))}</td>{effects}"
                f"<td>{_text(f.get('decided_by') or '')}</td>"
                f"<td>{_verdict(f.get('drifted')) if f.get('monitored', True) else '—'}</td>"
                f"<td class='note'>{_text(note)}</td></tr>")
        headers = ["feature", "kind", "rows", "test", "statistic", "p", "adjusted p",
                   *(h for _, h in _EFFECTS), "decided by", "drifted", "note"]
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
                     + "".join(rows) + "</table>")
    else:
        parts.append("<p class='note'>No per-feature drift results in this window.</p>")
    parts.append(_distribution_plots(report, window, features, pii, max_plots))
    return "".join(parts)


def _distribution_plots(report: dict[str, Any], window: dict[str, Any],
                        features: list[dict[str, Any]], pii: set[str], max_plots: int) -> str:
    reference = reference_for(report, window.get("version"))
    refs = _features_of(reference)
    sketches = _get(window, "sketch", "features")
    if not refs or not isinstance(sketches, dict):
        return ("<p class='note'>No distribution plots: the report holds no reference bins or "
                "no window sketch.</p>")
    if features:
        candidates = [f for f in sorted(features, key=lambda f: (not f.get("drifted"),
                                                                  -_effect(f)))
                      if f.get("monitored", True)]
        names = [str(f.get("name")) for f in candidates]
    else:
        names = list(refs)
    names = [n for n in names if n not in pii and n in refs and n in sketches]
    shown = names[:max(0, max_plots)]
    figures = []
    for name in shown:
        image = _distribution(name, refs[name], sketches[name])
        if image:
            figures.append(f"<figure>{image}<figcaption>{_text(name)}</figcaption></figure>")
    note = (f"<p class='note'>Distributions of {len(figures)} of {len(names)} features "
            "(drifted first, then the largest effects), reference vs latest window: shares of "
            "the non-missing values on equal-width bins over the central 99% of both sides; "
            "a title gives the share outside the reference's range.</p>")
    return note + "<div class='plots'>" + "".join(figures) + "</div>"


def _prediction(report: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    results = [(w, _get(w, "drift", "prediction")) for w in windows]
    results = [(w, p) for w, p in results if isinstance(p, dict)]
    if not results:
        return ("<h2>Prediction drift</h2><p class='note'>No prediction drift results (no "
                "reference output distribution for this model).</p>")
    rows = []
    for window, p in results:
        effects = "".join(f"<td class='num'>{_num(p.get(k))}</td>" for k, _ in _EFFECTS)
        rows.append(f"<tr><td>{_text(_label(window))}</td><td>{_text(window.get('version'))}</td>"
                    f"<td class='num'>{_num(p.get('rows'))}</td><td>{_text(p.get('test') or '—')}"
                    f"</td><td class='num'>{_num(p.get('statistic'))}</td>"
                    f"<td class='num'>{_num(p.get('p_value'))}</td>{effects}"
                    f"<td>{_text(p.get('decided_by') or '')}</td>"
                    f"<td>{_verdict(p.get('drifted'))}</td></tr>")
    headers = ["window", "version", "rows", "test", "statistic", "p", *(h for _, h in _EFFECTS),
               "decided by", "drifted"]
    parts = ["<h2>Prediction drift</h2><table><tr>"
             + "".join(f"<th>{h}</th>" for h in headers) + "</tr>" + "".join(rows) + "</table>"]
    latest = _latest(report, windows)
    reference = reference_for(report, latest.get("version")).get("prediction")
    sketch = _get(latest, "sketch", "prediction")
    if isinstance(reference, dict) and isinstance(sketch, dict):
        image = _distribution("prediction", reference, sketch)
        if image:
            parts.append(f"<figure>{image}<figcaption>model output: reference vs latest window"
                         "</figcaption></figure>")
    return "".join(parts)


def _quality(report: dict[str, Any], windows: list[dict[str, Any]], pii: set[str]) -> str:
    latest = _latest(report, windows)
    parts = [f"<h2>Data quality in the latest window ({_text(_label(latest))})</h2>"]
    columns = [c for c in _list(_get(latest, "quality", "columns")) if isinstance(c, dict)]
    if columns:
        rows = []
        for c in columns:
            name = str(c.get("name"))
            if name in pii:
                unseen = "<span class='note'>personal data: values not shown</span>"
            else:
                unseen = _text(", ".join(f"{_clip(v)} ({_clip(n)})" for v, n in _pairs(
                    c.get("unseen_top"))[:5]))
            rows.append(f"<tr><td>{_text(name)}</td>"
                        + "".join(f"<td class='num'>{_share(c.get(k))}</td>" for k in (
                            "missing_share", "ref_missing_share", "out_of_range_share",
                            "unseen_share", "invalid_share"))
                        + f"<td>{unseen}</td></tr>")
        parts.append("<table><tr><th>column</th><th>missing</th><th>reference missing</th>"
                     "<th>out of range</th><th>unseen</th><th>invalid</th><th>unseen values</th>"
                     f"</tr>{''.join(rows)}</table>")
    issues = [(w, [str(i) for i in _list(_get(w, "quality", "issues"))]) for w in windows]
    issues = [(w, i) for w, i in issues if i]
    if issues:
        items = "".join(f"<li><b>{_text(_label(w))}</b> (version {_text(w.get('version'))}): "
                        + "; ".join(_text(i) for i in found) + "</li>" for w, found in issues)
        parts.append(f"<h3>Issues per window</h3><ul>{items}</ul>")
    else:
        parts.append("<p class='ok'>No quality threshold crossed in any window.</p>")
    return "".join(parts)


def _skipped(report: dict[str, Any]) -> str:
    skipped = _list(report.get("skipped"))
    if not skipped:
        return ""
    items = "".join(f"<li>{_text(skipped_text(s))}</li>" for s in skipped[:200])
    more = f"<p class='note'>… and {len(skipped) - 200} more.</p>" if len(skipped) > 200 else ""
    return (f"<h2>Skipped ({len(skipped)})</h2><details><summary>what could not be read"
            f"</summary><ul>{items}</ul>{more}</details>")


# --- small helpers ---------------------------------------------------------------------------

def _text(value: Any) -> str:
    """Return ``value`` as HTML text: control characters removed, markup escaped.

    >>> _text("<script>alert('x')</script>")
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;'
    """
    if value is None:
        return "—"
    return html.escape(_clean(value), quote=True)


def _css(severity: str) -> str:
    return severity if severity in {"critical", "warning"} else ""


def _clip(value: Any) -> str:
    return _short(value, 60)


def _num(value: Any) -> str:
    """Return a number for a table: integers with separators, others in 4 significant digits.

    >>> _num(1234567), _num(0.000123456), _num(float("nan")), _num(None), _num("x<")
    ('1,234,567', '0.0001235', '—', '—', 'x&lt;')
    """
    if value is None or isinstance(value, bool):
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "—"
    return _text(value)


def _share(value: Any) -> str:
    """Return a share as a percentage.

    >>> _share(0.1234), _share(None)
    ('12.3%', '—')
    """
    number = _float(value)
    return "—" if not math.isfinite(number) else f"{number:.1%}"


def _verdict(value: Any) -> str:
    if value is None:
        return "—"
    return "<span class='drift'>yes</span>" if value else "<span class='ok'>no</span>"


def _metric(values: Any, metric: str) -> float:
    return _float(values.get(metric)) if isinstance(values, dict) else math.nan


def _effect(feature: dict[str, Any]) -> float:
    """Return the feature's largest effect size (for ordering; NaN counts as none)."""
    effects = [_float(feature.get(k)) for k, _ in _EFFECTS]
    return max([e for e in effects if math.isfinite(e)], default=0.0)


def _names(names: list[str], limit: int) -> str:
    shown = ", ".join(_short(n) for n in names[:limit])
    return shown + (f" (+{len(names) - limit})" if len(names) > limit else "")


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """Return ``[[value, count], ...]`` or ``{value: count}`` as pairs."""
    if isinstance(value, dict):
        return list(value.items())
    return [(p[0], p[1]) for p in _list(value) if isinstance(p, list | tuple) and len(p) == 2]


def _alert_start(alert: Any) -> str:
    """Return the start of an alert's window: given, or from a stored alert's ``start_key``.

    >>> _alert_start({"window": "1d", "start_key": 1796083200000})
    '2026-12-01'
    >>> _alert_start({"window": "500rows", "start_key": 4}), _alert_start({})
    ('#4', '—')
    """
    start = alert_window_start(alert)
    if isinstance(start, datetime):
        start = start.isoformat()
    if isinstance(start, str) and start.startswith("#"):
        return start  # a row window's number
    return "—" if start is None else _label({"start": start})
