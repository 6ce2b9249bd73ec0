"""The outcome of `loopml retrain` on a terminal (rich); its JSON is ``RetrainOutcome.to_json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.monitor.retrain import RetrainOutcome

_VERDICT = {"promoted": ("promoted", "bold green"), "refused": ("refused", "bold red"),
            "blocked": ("blocked", "bold red"), "too_few_rows": ("waiting", "yellow"),
            "nothing_to_do": ("nothing to do", "dim")}


def print_outcome(console: Console, outcome: RetrainOutcome) -> None:
    """Print the verdict, the gates that failed, and where the record is.

    The steps themselves were printed while they ran.
    """
    from loopml.views.text import line

    word, style = _VERDICT.get(outcome.status, (outcome.status, "bold"))
    console.print(line((word, style), f" · {outcome.model}@{outcome.alias}: ",
                       _where(outcome)))
    for failed in outcome.failed:
        console.print(line("  ", (f"✗ {failed['gate']}", "red"), ": ", failed["detail"]))
    if outcome.datasets:
        console.print(line("  data ", outcome.datasets.get("training", "-"), ", holdout ",
                           outcome.datasets.get("holdout", "-")))
    if outcome.run_id:
        console.print(line("  recorded in run ", (outcome.run_id[:12], "bold"),
                           f" (loopml runs show {outcome.run_id[:12]}); who is {outcome.alias} "
                           f"and why: loopml models history {outcome.model}"))


def _where(outcome: RetrainOutcome) -> str:
    if outcome.status == "promoted":
        return f"version {outcome.champion} → {outcome.challenger}"
    if outcome.challenger is not None:
        return f"stays at version {outcome.champion} (challenger {outcome.challenger} refused)"
    return f"stays at version {outcome.champion}"
