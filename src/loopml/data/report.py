"""The dataset profile as a self-contained HTML page: a table per column and a plot each."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
from pathlib import PurePosixPath
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem} h2{font-size:1.1rem;margin:0 0 .5rem}
.col{display:flex;gap:1.5rem;align-items:flex-start;border-top:1px solid #ddd;padding:1rem 0}
table{border-collapse:collapse;font-size:.85rem} td,th{padding:.15rem .6rem;text-align:left}
th{color:#666;font-weight:normal} .pii{color:#b00;font-weight:bold} .meta{color:#555}
"""


# One plot costs ~0.1 s: a 5,000-column file would spend minutes drawing what nobody scrolls to.
MAX_PLOTS = 100


def _path_part(name: str) -> str:
    """Return ``name`` as one safe file-name part; changed names get a hash so none collide.

    >>> _path_part("teamA"), _path_part("team/A")
    ('teamA', 'team_A-3cc39c11')
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64].lstrip(".") or "_"
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def report_filename(project: str, dataset: str, seq: int) -> PurePosixPath:
    """Return the report's path relative to the reports folder: one folder per project.

    >>> str(report_filename("teamB", "shared", 1))
    'teamB/data-shared-1.html'
    """
    return PurePosixPath(_path_part(project), f"data-{_path_part(dataset)}-{seq}.html")


def _plot(stats: dict[str, Any]) -> str:
    # A Figure of its own with the Agg canvas: no pyplot, so neither the global backend
    # nor pyplot's figure list changes (a notebook's plt.show() keeps working).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if "histogram" not in stats and not stats.get("top"):
        return ""
    figure = Figure(figsize=(4.2, 2.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    if "histogram" in stats:
        edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)] or [1.0]
        axes.bar(edges[:-1], counts, width=widths, align="edge", color="#4c78a8")
    else:
        top = stats["top"][:12]
        labels = [re.sub(r"[\x00-\x1f\x7f]", " ", str(v))[:20] for v, _ in reversed(top)]
        axes.barh(labels, [n for _, n in reversed(top)],
                  color="#f58518")
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="distribution" src="data:image/png;base64,' \
           f'{base64.b64encode(buffer.getvalue()).decode()}">'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


_VALUE_KEYS = ("min", "max", "top", "quantiles", "histogram")


def render(title: str, profile: dict[str, Any], *, meta: dict[str, Any],
           pii: dict[str, str]) -> str:
    """Return the HTML report of a profile.

    Columns in ``pii`` ({column: kind}) show counts only: their values, extremes,
    quantiles and plots could reveal the people in the data.
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append("<p class='meta'>" + " · ".join(
        f"{html.escape(k)}: <b>{_fmt(v)}</b>" for k, v in meta.items()) + "</p>")
    columns = profile["columns"]
    if len(columns) > MAX_PLOTS:
        parts.append(f"<p class='meta'>{len(columns):,} columns: plots for the first "
                     f"{MAX_PLOTS}, tables for all.</p>")
    for number, (name, stats) in enumerate(columns.items()):
        if name in pii:
            stats = {k: v for k, v in stats.items() if k not in _VALUE_KEYS}
        rows = [("type", stats["type"]), ("missing", f"{stats['missing']:,} "
                                                     f"({stats['missing_share']:.1%})"),
                ("distinct", f"{stats['distinct']:,}")]
        for key in ("min", "max", "mean", "std"):
            if stats.get(key) is not None:
                rows.append((key, stats[key]))
        for q, v in (stats.get("quantiles") or {}).items():
            if q in ("0.05", "0.25", "0.5", "0.75", "0.95"):
                rows.append((f"p{float(q) * 100:g}", v))
        if stats.get("top") and "histogram" not in stats:
            rows.append(("top", ", ".join(f"{v} ({n:,})" for v, n in stats["top"][:5])))
        flag = f" <span class='pii'>PII: {html.escape(pii[name])}</span>" if name in pii else ""
        table = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
        parts.append(f"<div class='col'><div><h2>{html.escape(name)}{flag}</h2>"
                     f"<table>{table}</table></div>"
                     f"<div>{_plot(stats) if number < MAX_PLOTS else ''}</div></div>")
    parts.append("</body></html>")
    return "".join(parts)
