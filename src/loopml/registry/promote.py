"""Promotion: run every gate against the alias's current version on the same rows, then move it.

The rows are ones neither model trained on: the challenger's test rows minus the
champion's training rows (matched by content), or labelled recent data when given. The
alias moves only when every gate passes (or ``force`` with a reason); every attempt,
refused ones included, is recorded with its gate report in the alias history, and the
report is added to the challenger's HTML model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from loopml.config import GatesSection
    from loopml.registry.gates import GateReport
    from loopml.registry.registry import Registry
    from loopml.store.models import AliasEventRecord, ModelVersionRecord


@dataclass
class Promotion:
    """What a promotion did: the recorded event, the gate report and where the card went."""

    event: AliasEventRecord | None  # None: the alias already pointed at the version
    report: GateReport | None
    challenger: ModelVersionRecord
    champion: ModelVersionRecord | None
    card_path: Path | None = None

    @property
    def moved(self) -> bool:
        return self.event is not None and self.event.outcome in ("moved", "forced")


def promote(registry: Registry, name: str, version: int, *, to: str, gates: GatesSection,
            actor: str, force: bool = False, reason: str | None = None,
            data: str | None = None, sensitive: list[str] | None = None,
            seed: int = 0) -> Promotion:
    """Gate version ``version`` of ``name`` against ``name@to`` and move the alias if it passes.

    ``data`` (``DATASET@VERSION``, labelled) replaces the default comparison rows.
    ``force`` moves the alias even when a gate fails; it needs a ``reason``, which is
    recorded. Raises nothing on a refusal: the returned event's outcome says ``refused``.
    """
    from loopml.registry.gates import check_gates, run_gates
    from loopml.store.models import check_alias

    check_alias(to)
    if force and not (reason and reason.strip()):
        raise InvalidInput("--force needs --reason \"…\": the reason is recorded in the alias "
                           "history")
    models = registry.models
    challenger = models.get(name, str(version))
    expected = models.aliases(name).get(to)
    if expected == challenger.version:
        return Promotion(event=None, report=None, challenger=challenger, champion=None)
    check_gates(gates, task=challenger.task, sensitive=sensitive if sensitive is not None
                else _sensitive(challenger), metric=_metric(challenger))
    champion = models.get(name, str(expected)) if expected is not None else None
    if champion is not None:
        same_job(challenger, champion, alias=to)
    rows, note, target = comparison_rows(registry, challenger, champion, data=data)
    challenger_model = registry.load(challenger, flavour=challenger.flavour)
    champion_model = registry.load(champion, flavour=champion.flavour) if champion else None
    contract = _contract(registry, challenger)
    if contract is None and data is not None:  # an imported model: the given rows' contract
        contract = registry.catalog.contract(data, project=challenger.lineage.get("project"))
    report = run_gates(
        gates, challenger=challenger_model, champion=champion_model, rows=rows,
        rows_note=note, task=challenger.task, target=target,
        classes=challenger.signature.get("outputs", {}).get("labels") or [],
        sensitive=sensitive if sensitive is not None else _sensitive(challenger),
        size_bytes=_size(challenger), contract=contract,
        input_columns=[c["name"] for c in challenger.signature.get("inputs", [])],
        metric=_metric(challenger), seed=seed)
    outcome = "moved" if report.passed else "forced" if force else "refused"
    if outcome == "refused":
        failed = [g.name for g in report.gates if not g.passed]
        reason = f"gates failed: {', '.join(failed)}" + (f" ({reason})" if reason else "")
    # The card first: once the alias has moved, nothing after it can fail the command.
    card_path = _card_with_gates(registry, challenger, report, to=to)
    event = models.move_alias(name, to, challenger.version, expected=expected, actor=actor,
                              reason=reason, outcome=outcome, report=report.to_json())
    return Promotion(event=event, report=report, challenger=challenger, champion=champion,
                     card_path=card_path)


def same_job(challenger: ModelVersionRecord, champion: ModelVersionRecord, *, alias: str
             ) -> None:
    """Refuse to compare models that do not answer the same question (task, target, labels)."""
    def job(record: ModelVersionRecord) -> tuple[str, Any, list[str]]:
        outputs = record.signature.get("outputs", {})
        target = outputs.get("target") or outputs.get("value", {}).get("target")
        return record.task, target, sorted(map(str, outputs.get("labels") or []))

    theirs, ours = job(champion), job(challenger)
    if theirs != ours:
        raise InvalidInput(
            f"{challenger.ref} predicts {ours[1]!r} ({ours[0]}"
            f"{', labels ' + ', '.join(ours[2]) if ours[2] else ''}) but {champion.name}@{alias} "
            f"(version {champion.version}) predicts {theirs[1]!r} ({theirs[0]}"
            f"{', labels ' + ', '.join(theirs[2]) if theirs[2] else ''}): they cannot be "
            "compared; register a model for another target under another name")


def comparison_rows(registry: Registry, challenger: ModelVersionRecord,
                    champion: ModelVersionRecord | None, *, data: str | None = None
                    ) -> tuple[pd.DataFrame, str, str]:
    """Return the rows both models are scored on, a note saying which, and the target column."""
    from loopml.registry.compare import comparison_rows as without_training_rows

    target = challenger.signature.get("outputs", {}).get("target") or \
        challenger.signature.get("outputs", {}).get("value", {}).get("target")
    if not target:
        raise InvalidInput(f"{challenger.ref} names no target column in its signature")
    if data is not None:
        frame = registry.catalog.load(data, project=challenger.lineage.get("project"))
        if target not in frame.columns:
            raise InvalidInput(f"{data} has no column {target!r} (the target of "
                               f"{challenger.ref}): gates need labelled rows")
        labelled = frame[frame[target].notna()].reset_index(drop=True)
        # Given rows too: none that either model trained on.
        rows, known = labelled, []
        for record in (challenger, champion):
            seen = _trained_on(registry, record)
            if seen is not None:
                rows, _ = without_training_rows(rows, seen, columns=_shared(rows, seen))
                known.append(record.ref)
        note = f"{len(labelled)} labelled rows of {data} (given with --data); " + (
            f"{len(rows)} left after removing the rows {' and '.join(known)} trained on"
            if known else "neither model's training rows are known")
        return rows, note, target
    test = training_parts(registry, challenger)["test"]
    where = f"{challenger.ref}'s test rows of {challenger.lineage['dataset']}"
    if champion is None:
        return test, f"{where}: all {len(test)} (no champion to compare with yet)", target
    champion_train = _trained_on(registry, champion)
    # Rows are the same rows when every column matches, not only the challenger's inputs.
    columns = list(test.columns) if champion_train is None else _shared(test, champion_train)
    rows, note = without_training_rows(test, champion_train, columns=columns)
    return rows, f"{where}: {note}", target


def _trained_on(registry: Registry, record: ModelVersionRecord | None) -> pd.DataFrame | None:
    """Return the rows ``record`` was fitted on (train + validation), None when unknown."""
    if record is None or not record.lineage.get("dataset"):
        return None
    import pandas as pd

    parts = training_parts(registry, record)
    return pd.concat([parts["train"], parts["validation"]], ignore_index=True)


def _shared(rows: pd.DataFrame, other: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if c in other.columns]


def training_parts(registry: Registry, record: ModelVersionRecord) -> dict[str, pd.DataFrame]:
    from loopml.data.splits import SplitSpec

    lineage = record.lineage
    if not lineage.get("dataset") or not lineage.get("split"):
        raise InvalidInput(f"{record.ref} has no training data in its lineage (an imported "
                           "model): pass labelled rows with --data DATASET@VERSION")
    split = dict(lineage["split"])
    split["fractions"] = tuple(split["fractions"])
    try:
        return registry.catalog.load_split(lineage["dataset"], SplitSpec(**split),
                                           project=lineage.get("project"))
    except NotFound as exc:
        raise NotFound(f"{record.ref} was trained on {lineage['dataset']}, which is no longer "
                       f"stored ({exc}); pass labelled rows with --data DATASET@VERSION") from exc


def _contract(registry: Registry, record: ModelVersionRecord) -> Any | None:
    dataset = record.lineage.get("dataset") or record.lineage.get("contract")
    if not dataset:
        return None
    try:
        return registry.catalog.contract(dataset, project=record.lineage.get("project"))
    except (NotFound, InvalidInput):
        return None


def _sensitive(record: ModelVersionRecord) -> list[str]:
    config = record.lineage.get("config") or {}
    return list((config.get("data") or {}).get("sensitive") or [])


def _metric(record: ModelVersionRecord) -> str | None:
    config = record.lineage.get("config") or {}
    metric = (config.get("train") or {}).get("metric")
    return None if metric in (None, "auto") else metric


def _size(record: ModelVersionRecord) -> int | None:
    return record.onnx_size if record.flavour == "onnx" else record.native_size


def _card_with_gates(registry: Registry, record: ModelVersionRecord, report: GateReport, *,
                     to: str) -> Path | None:
    """Store the challenger's HTML card with the gate report added; return its file path."""
    from html import escape as html_escape

    from loopml.evaluate.card import render_card
    from loopml.registry.export import file_safe, write_new_file
    from loopml.registry.gate_html import gate_report_html

    card = registry.card(record)
    if card is None:
        return None
    section = f"<h2>Promotion to {html_escape(to)}</h2>\n" + gate_report_html(report)
    html = render_card(card)
    html = html.replace("</body>", section + "\n</body>", 1) if "</body>" in html \
        else html + section
    blob = registry.client.artifacts.put_bytes(html.encode())
    registry.models.set_card_html(record.name, record.version, blob.sha256)
    folder = registry.workspace.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-card-{file_safe(record.name)}-v{record.version}.html"
    return write_new_file(html.encode(), path, overwrite=True)

