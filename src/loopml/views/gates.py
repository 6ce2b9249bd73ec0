"""The gate report of a promotion: on a terminal (rich), as strict JSON, and as HTML for the card.

Gate names and details hold user text (column and metric names, contract messages): the
terminal gets them through :mod:`loopml.views.text` (no markup, control characters escaped),
the HTML through :func:`html.escape`, and JSON through ``json.dumps``.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console

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


def _comparison_text(comparison: dict[str, Any]) -> str:
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


def print_gate_report(console: Console, report: GateReport) -> None:
    """Print the verdict, the rows the gates ran on, one table row per gate, the comparison."""
    from rich.table import Table

    verdict = ("PASSED", "bold green") if report.passed else ("REFUSED", "bold red")
    failed = len(report.failed)
    console.print(line(("gates ", "bold"), verdict,
                       f"  {len(report.gates) - failed} of {len(report.gates)} passed"))
    console.print(line(("rows: ", "dim"), f"{report.rows['count']} — {report.rows['note']}"))
    table = Table()
    for header, justify in (("gate", "left"), ("result", "left"), ("observed", "right"),
                            ("limit", "right"), ("detail", "left")):
        table.add_column(header, justify=justify, overflow="fold")
    for gate in report.gates:
        table.add_row(plain(gate.name),
                      plain("pass", "green") if gate.passed else plain("FAIL", "bold red"),
                      plain(fmt_number(gate.observed)), plain(fmt_number(gate.limit)),
                      plain(gate.detail))
    console.print(table)
    if report.comparison:
        console.print(line(("champion comparison: ", "dim"),
                           _comparison_text(report.comparison)))


def gate_report_json(report: GateReport) -> str:
    """Return the report as strict JSON text (no NaN or infinities: those become null)."""
    from loopml.evaluate.card import json_safe

    # ASCII escapes keep bidirectional overrides in names from acting on a terminal.
    return json.dumps(json_safe(report.to_json()), indent=2, allow_nan=False, default=str)


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
                     f"{html.escape(_comparison_text(report.comparison))}.</p>")
    parts.append("</section>")
    return "".join(parts)
