"""The gate report as an HTML section for the model card (every user text escaped).

The terminal and JSON forms are in :mod:`loopml.views.gates`; this one belongs to the
registry because promotion writes it into the challenger's stored card.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.registry.gates import GateReport


def fmt_number(value: Any) -> str:
    """Return a gate's observed value or limit as short text; None as a dash.

    >>> fmt_number(0.912345), fmt_number(None), fmt_number(float("nan")), fmt_number(3)
    ('0.9123', '—', 'nan', '3')
    """
    if value is None:
        return "—"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def comparison_text(comparison: dict[str, Any]) -> str:
    """Return the champion comparison in one sentence."""
    text = (f"{comparison['metric']}: challenger {fmt_number(comparison['challenger'])}, "
            f"champion {fmt_number(comparison['champion'])}, improvement "
            f"{comparison['delta']:+.4g}")
    if comparison.get("ci"):
        low, high = comparison["ci"]
        text += (f" ({comparison['confidence']:.0%} CI {low:+.4g} to {high:+.4g}, one-sided "
                 f"p = {comparison['p_value']:.3g}, {comparison['resamples']} paired bootstrap "
                 "resamples")
        if comparison.get("skipped"):
            text += f", {comparison['skipped']} skipped: metric undefined"
        text += ")"
    return text


def gate_report_html(report: GateReport) -> str:
    """Return a self-contained ``<section>`` for the model card; every user text is escaped."""
    def cell(value: Any) -> str:
        return f"<td>{html.escape(fmt_number(value))}</td>"

    verdict = ("passed" if report.passed else "refused")
    colour = "#1a7f37" if report.passed else "#c62828"
    parts = [
        "<section class='gates'><h2>Promotion gates</h2>",
        f"<p><b style='color:{colour}'>{verdict}</b> — {len(report.gates) - len(report.failed)}"
        f" of {len(report.gates)} gates passed. Rows: {int(report.rows['count'])} "
        f"({html.escape(str(report.rows['note']))}).</p>",
        "<table><tr><th>gate</th><th>result</th><th>observed</th><th>limit</th>"
        "<th>detail</th></tr>",
    ]
    for gate in report.gates:
        result = ("<td style='color:#1a7f37'>pass</td>" if gate.passed else
                  "<td style='color:#c62828'><b>fail</b></td>")
        parts.append(f"<tr><td>{html.escape(gate.name)}</td>{result}{cell(gate.observed)}"
                     f"{cell(gate.limit)}<td>{html.escape(gate.detail)}</td></tr>")
    parts.append("</table>")
    if report.comparison:
        parts.append(f"<p>Champion comparison on the same rows: "
                     f"{html.escape(comparison_text(report.comparison))}.</p>")
    parts.append("</section>")
    return "".join(parts)
