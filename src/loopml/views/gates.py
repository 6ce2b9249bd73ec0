"""The gate report of a promotion: on a terminal (rich), as strict JSON, and as HTML for the card.

Gate names and details hold user text (column and metric names, contract messages): the
terminal gets them through :mod:`loopml.views.text` (no markup, control characters escaped),
the HTML through :func:`html.escape`, and JSON through ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from loopml.registry.gate_html import comparison_text as _comparison_text
from loopml.registry.gate_html import fmt_number
from loopml.views.text import line, plain

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.registry.gates import GateReport


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
