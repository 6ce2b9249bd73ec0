"""The retraining policy (``loopml retrain``): from alerts and labelled production rows to a
challenger that replaces the champion only when every gate passes.

:func:`retrain_model` runs the policy of ``retrain:`` in loopml.yaml once:

1. **trigger**: an alert of a kind in ``retrain.on`` raised for the model since its
   ``promote_to`` alias last moved, and not handled by an earlier retrain; ``force`` skips
   this step only. ``on: drift`` means drift and prediction_drift alerts, ``performance``
   realised and estimated performance alerts, ``quality`` data-quality alerts.
2. **rows**: the model's predictions (any version) joined with their latest labels. Rows are
   *recent* when their label arrived after the data of the retrain that made the champion
   (all labelled rows for a champion trained otherwise), and *new* when it arrived after
   the last retrain that trained a challenger, promoted or not. Fewer than
   ``min_new_labeled_rows`` new rows: nothing is trained (``force`` does not lower this: a
   model retrained on a handful of rows is worse than none), and the counts are said.
3. **data**: the recent rows, split by a seeded hash of ``(request_id, row)`` into a training
   part and a gate holdout (``holdout`` share), typed as the champion's training dataset
   (:mod:`loopml.monitor.retrain_data`). The training part (``data: recent``), or the
   champion's dataset version plus it (``recent+training``), becomes the next version of
   the same dataset (``credit@1`` → ``credit@2``); the holdout a version of
   ``<dataset>-holdout``. Columns the log never holds (ids, sensitive and personal columns
   the model does not take) are empty in production rows; gates that therefore cannot pass
   (fairness on such a column, a contract that says it is never missing) stop the retrain
   before any training, saying which and how to fix it.
4. **challenger**: trained with the project's search on the new version, registered, and
   promoted to ``promote_to`` through every gate of ``gates:`` on the holdout, with the story
   (alerts, rows, data versions) as the reason in the alias history. A refusal leaves the
   champion where it was.
5. **record**: a tracking run named ``retrain`` whose tags say the model, the trigger alerts,
   the champion, the data versions, the challenger and the outcome; its artifact
   ``retrain.json`` holds the whole outcome. A retrain that stops at step 1 or 2 (nothing to
   do yet) records nothing, so a retrain under cron does not fill the store with empty runs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

    from loopml.config import GatesSection, ProjectConfig
    from loopml.monitor.retrain_data import LabelledRows, TypedRows
    from loopml.registry.registry import Registry
    from loopml.store.models import ModelVersionRecord
    from loopml.store.monitoring import AlertRecord
    from loopml.workspace import Workspace

ACTOR = "loopml retrain"
RUN_NAME = "retrain"
#: The alert kinds each ``retrain.on`` entry stands for.
ALERT_KINDS = {"drift": ("drift", "prediction_drift"),
               "performance": ("performance", "performance_estimated"),
               "quality": ("quality",)}
#: Outcomes of a retrain that trained a challenger: its alerts are handled, its rows used.
TRAINED = ("promoted", "refused")


@dataclass
class RetrainOutcome:
    """What one retrain did and why.

    ``status`` is ``nothing_to_do`` (no alert), ``too_few_rows``, ``blocked`` (a gate could
    not pass on production rows: nothing trained), ``promoted`` or ``refused``.
    """

    model: str
    status: str
    message: str
    alias: str
    champion: int | None
    challenger: int | None = None
    alerts: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # {"gate", "detail"}
    steps: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    run_id: str | None = None
    card: str | None = None

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_json(self) -> dict[str, Any]:
        """Return the outcome as JSON-ready data."""
        return {**asdict(self), "promoted": self.promoted}


def retrain_model(workspace: Workspace, config: ProjectConfig, *, model: str | None = None,
                  force: bool = False, log_dir: str | os.PathLike[str] | None = None,
                  gates: GatesSection | None = None, console: Console | None = None
                  ) -> RetrainOutcome:
    """Return the outcome of running the retraining policy once for ``model``.

    ``model`` defaults to ``models.name``, else the project's name; ``log_dir`` to
    ``monitor.log_dir``, else ``<workspace>/predictions``; ``gates`` to ``config.gates``.
    ``force`` skips the alert trigger (not the minimum of new labelled rows). Steps are
    printed to ``console`` as they happen. Raises :class:`InvalidInput` when there is no
    champion to retrain or it has no training data in its lineage.
    """
    from loopml.registry.registry import Registry

    name = model or config.models.name or config.project.name
    folder = log_dir or config.monitor.log_dir or workspace.home / "predictions"
    with Registry.open(workspace) as registry:
        return _Retrain(registry, config, name=name, folder=str(folder), console=console,
                        gates=gates if gates is not None else config.gates).run(force=force)


class _Retrain:
    """One run of the policy: the state its steps share."""

    def __init__(self, registry: Registry, config: ProjectConfig, *, name: str, folder: str,
                 console: Console | None, gates: GatesSection) -> None:
        self.registry = registry
        self.config = config
        self.policy = config.retrain
        self.name = name
        self.folder = folder
        self.console = console
        self.gates = gates
        self.steps: list[str] = []

    def say(self, text: str) -> None:
        self.steps.append(text)
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text), soft_wrap=True)  # a Text is never read as markup

    def outcome(self, status: str, message: str, **fields: Any) -> RetrainOutcome:
        self.say(message)
        return RetrainOutcome(model=self.name, status=status, message=message,
                              alias=self.policy.promote_to, steps=self.steps, **fields)

    # -- the steps -------------------------------------------------------------------------

    def run(self, *, force: bool) -> RetrainOutcome:
        champion = self._champion()
        project = champion.lineage.get("project") or self.config.project.name
        earlier = self._earlier_runs(project)
        alerts, since = self._trigger(champion, earlier)
        base = {"champion": champion.version}
        if not alerts and not force:
            kinds = "/".join(self.policy.on)
            return self.outcome("nothing_to_do", f"nothing to do: no {kinds} alert since "
                                f"champion v{champion.version} {since}", **base)
        base["alerts"] = [a.id for a in alerts]
        self.say(_alerts_line(alerts) if alerts else "no alert: retraining because of --force")

        rows = self._read_log(champion)
        made_champion = _run_that_made(earlier, champion.version)
        recent_after = _micros(made_champion, "labels_until_us")
        new_after = max((_micros(r, "labels_until_us") or 0 for r in earlier
                         if r.get("outcome") in TRAINED), default=None)
        recent, new = _select(rows, recent_after, new_after)
        shifted = self._shift_start(alerts)
        if shifted is not None:  # the world the challenger must learn began with the alerts
            predicted = rows.table.column("ts").cast("int64").to_numpy()
            recent, new = recent & (predicted >= shifted), new & (predicted >= shifted)
            self.say(f"recent rows: predicted since {_iso(shifted)}, the start of the first "
                     "window an alert was raised on")
        counts = {"predictions": rows.predictions, "labelled": rows.table.num_rows,
                  "recent": int(recent.sum()), "new": int(new.sum()),
                  "needed": self.policy.min_new_labeled_rows}
        base["rows"] = counts
        where = "since the last retrain's data" if new_after is not None else "in the log"
        if counts["new"] < self.policy.min_new_labeled_rows:
            return self.outcome(
                "too_few_rows", f"not enough new labelled rows to retrain: {counts['new']} "
                f"{where} ({rows.predictions} predictions of {self.name}, "
                f"{rows.table.num_rows} labelled), retrain.min_new_labeled_rows needs "
                f"{self.policy.min_new_labeled_rows}; nothing trained", **base)
        self.say(f"{counts['recent']} labelled production rows the champion has not learned "
                 f"from ({counts['new']} new {where}; {rows.unlabelled} predictions without "
                 "a usable label)")
        return self._retrain(champion, project, rows, recent, base, alerts, force=force)

    def _shift_start(self, alerts: list[AlertRecord]) -> int | None:
        """Return when the first alerted window began (epoch µs), or None without alerts."""
        monitoring = self.registry.client.store.monitoring
        starts = []
        for alert in alerts:
            for window in monitoring.windows(alert.model, alert.window,
                                             keys=[(alert.version, alert.start_key)]):
                if window.first_ts is not None:
                    starts.append(window.first_ts)
        if not starts:
            return None
        first = min(starts)
        return int(first.timestamp() * 1_000_000) // 1000 * 1000  # whole ms: the log's grain

    def _read_log(self, champion: ModelVersionRecord) -> LabelledRows:
        """Return the model's labelled predictions, with a progress bar on a terminal."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from loopml.monitor.retrain_data import labelled_rows

        labels = champion.signature.get("outputs", {}).get("labels")
        skipped: list[tuple[str, str]] = []
        with Progress(TextColumn("reading the prediction log", markup=False), BarColumn(),
                      TextColumn("{task.completed}/{task.total} segments"), TimeElapsedColumn(),
                      console=self.console, transient=True,
                      disable=self.console is None or not self.console.is_terminal) as bar:
            task = bar.add_task("log", total=None)
            rows = labelled_rows(
                self.folder, model=self.name, task=champion.task,
                classes=labels if champion.task != "regression" else None, skipped=skipped,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
        if skipped:
            path, why = skipped[0]
            self.say(f"{len(skipped)} log segment(s) could not be read and were skipped "
                     f"(first: {path}: {why})")
        return rows

    def _retrain(self, champion: ModelVersionRecord, project: str, rows: LabelledRows,
                 recent: Any, base: dict[str, Any], alerts: list[AlertRecord], *, force: bool
                 ) -> RetrainOutcome:
        from loopml.monitor.retrain_data import holdout_mask

        client = self.registry.client
        catalog = self.registry.catalog
        source_ref = champion.lineage["dataset"]
        source = catalog.get(source_ref, project=project)
        target = _target(champion)
        typed = self._typed(rows, recent, source, target, champion)
        ids = typed.table.column("__request_id").to_pylist()
        positions = typed.table.column("__row").to_pylist()
        table = typed.table.drop_columns(["__request_id", "__row", "__label_ts"])
        held = holdout_mask(ids, positions, share=self.policy.holdout,
                            seed=self.config.data.split.seed)
        train_part, holdout = _part(table, ~held), _part(table, held)
        base["rows"].update(train=train_part.num_rows, holdout=holdout.num_rows)
        notes = _absent_notes(typed, recent.sum())
        for note in notes:
            self.say(note)
        tags = {"model": self.name, "alias": self.policy.promote_to,
                "champion": champion.version, "trigger": "force" if force and not alerts
                else "alerts", "alerts": ",".join(str(a.id) for a in alerts) or "-",
                "policy_data": self.policy.data}
        with client.start_run(RUN_NAME, project=project, tags=tags) as run:
            run.log_params({"on": ",".join(self.policy.on), "data": self.policy.data,
                            "holdout": self.policy.holdout, "promote_to": self.policy.promote_to,
                            "min_new_labeled_rows": self.policy.min_new_labeled_rows,
                            "force": force, "log_dir": self.folder})
            blockers = _blockers(self.gates, self.config, catalog, source_ref, project,
                                 holdout=holdout, absent=typed.absent, target=target)
            if not holdout.num_rows or not train_part.num_rows:
                blockers.append({"gate": "rows", "detail": (
                    f"the split of {held.size} recent rows left {train_part.num_rows} to train "
                    f"on and {holdout.num_rows} to gate on; raise "
                    "retrain.min_new_labeled_rows or change retrain.holdout")})
            if blockers:
                done = self.outcome("blocked", "nothing trained: " + "; ".join(
                    f"{b['gate']}: {b['detail']}" for b in blockers), failed=blockers,
                    notes=notes, run_id=run.id, **base)
                return _record(run, done, {"outcome": "blocked"})
            datasets = self._datasets(source, project, target, train_part, holdout)
            for role, ref in (("retrain_source", datasets["source"]),
                              ("retrain_train", datasets["training"]),
                              ("retrain_holdout", datasets["holdout"])):
                catalog.log_input(run.id, ref, role=role, project=project)
            until = typed.table.column("__label_ts").cast("int64").to_pylist()
            until_us = max(until)
            tags = {"training_data": datasets["training"], "holdout_data": datasets["holdout"],
                    "labels_until_us": until_us, "labels_until": _iso(until_us)}
            run.set_tags(tags)
            challenger = self._train(champion, project, datasets["training"], target)
            run.set_tags({"challenger": challenger.version})
            story = self._story(alerts, champion, source_ref, datasets, base["rows"],
                                until_us, run.id)
            done = self._promote(challenger, datasets["holdout"], story, base=base,
                                 datasets=datasets, notes=notes, run_id=run.id)
            return _record(run, done, {"outcome": done.status})

    def _champion(self) -> ModelVersionRecord:
        alias = self.policy.promote_to
        try:
            version = self.registry.models.aliases(self.name).get(alias)
        except NotFound as exc:
            raise InvalidInput(f"retrain: {exc}") from exc
        if version is None:
            raise InvalidInput(f"retrain: {self.name}@{alias} does not exist, so there is no "
                               f"champion to retrain; promote a version first (loopml models "
                               f"promote {self.name} VERSION --to {alias})")
        champion = self.registry.models.get(self.name, str(version))
        if not champion.lineage.get("dataset"):
            raise InvalidInput(f"retrain: {champion.ref} has no training dataset in its lineage "
                               "(an imported model): retraining builds on the champion's data; "
                               "train and register a model with `loopml train` first")
        return champion

    def _earlier_runs(self, project: str) -> list[dict[str, str]]:
        """Return the tags of this model's earlier retrain runs that ended, newest first."""
        client = self.registry.client
        found = []
        for record in client.list_runs(project=project, top_level=True, limit=None):
            if record.name != RUN_NAME:
                continue
            tags = client.run_detail(record.id).tags
            if tags.get("model") != self.name:
                continue
            if record.status != "FINISHED":
                # killed between its promotion and its record: it still made the champion
                # (and trained on its rows) if the alias points at its challenger now
                if tags.get("challenger") is None or "labels_until_us" not in tags:
                    continue
                tags = {**tags, "outcome": tags.get("outcome") or "promoted"} \
                    if self._holds_alias(tags["challenger"]) else tags
                if tags.get("outcome") not in TRAINED:
                    continue
            found.append({**tags, "run_id": record.id})
        return found

    def _holds_alias(self, version: str) -> bool:
        """Return whether ``promote_to`` points at ``version`` of the model now."""
        try:
            current = self.registry.models.aliases(self.name).get(self.policy.promote_to)
        except NotFound:
            return False
        return current is not None and str(current) == str(version)

    def _trigger(self, champion: ModelVersionRecord, earlier: list[dict[str, str]]
                 ) -> tuple[list[AlertRecord], str]:
        """Return the unhandled alerts since the alias last moved, and that moment in words."""
        alias = self.policy.promote_to
        moves = [e for e in self.registry.history(self.name, alias)
                 if e.outcome in ("moved", "forced") and e.to_version == champion.version]
        moved_at = moves[-1].at if moves else None
        since = f"was promoted at {moved_at:%Y-%m-%d %H:%M:%S} UTC" if moved_at else \
            f"became {alias}"
        kinds = [k for on in self.policy.on for k in ALERT_KINDS[on]]
        handled = {int(i) for r in earlier if r.get("outcome") in TRAINED
                   for i in r.get("alerts", "").split(",") if i.isdigit()}
        alerts = self.registry.client.store.monitoring.alerts(model=self.name, since=moved_at,
                                                              kinds=kinds)
        # alerts on the champion itself: late labels for a version it replaced are history
        return sorted((a for a in alerts if a.id not in handled
                       and a.version == champion.version), key=lambda a: a.id), since

    def _typed(self, rows: LabelledRows, recent: Any, source: Any, target: str,
               champion: ModelVersionRecord) -> TypedRows:
        """Return the recent rows typed as ``source``, with their keys in ``__`` columns."""
        import pyarrow as pa

        from loopml.monitor.retrain_data import LabelledRows, snapshot_schema, typed_rows

        mask = pa.array(recent)
        picked = LabelledRows(table=rows.table.filter(mask),
                              labels=[v for v, keep in zip(rows.labels, recent, strict=True)
                                      if keep],
                              predictions=rows.predictions, unlabelled=rows.unlabelled,
                              invalid_labels=rows.invalid_labels, repeated=rows.repeated)
        kinds = {c["name"]: c.get("kind", "number") for c in champion.signature.get("inputs", [])}
        typed = typed_rows(picked, snapshot_schema(self.registry.catalog, source),
                           target=target, kinds=kinds)
        for name in ("__request_id", "__row", "__label_ts"):
            column = {"__request_id": "request_id", "__row": "row",
                      "__label_ts": "label_ts"}[name]
            typed.table = typed.table.append_column(name, picked.table.column(column))
        return typed

    def _datasets(self, source: Any, project: str, target: str, train_part: pa.Table,
                  holdout: pa.Table) -> dict[str, str]:
        """Add the training data and the holdout as dataset versions; return their refs."""
        import pyarrow as pa

        from loopml.monitor.retrain_data import add_version, kept_pii, snapshot_table

        catalog = self.registry.catalog
        pii = kept_pii(source.pii, train_part.schema.names)
        if self.policy.data == "recent+training":
            old = snapshot_table(catalog, source).cast(train_part.schema)
            training = pa.concat_tables([old, train_part])
            what = (f"{source.num_rows} rows of {source.ref} + {train_part.num_rows} recent "
                    "labelled rows")
        else:
            training, what = train_part, f"{train_part.num_rows} recent labelled rows"
        added = add_version(catalog, training, name=source.dataset, project=project,
                            target=target, pii=pii, label="training")
        kept = add_version(catalog, holdout, name=f"{source.dataset}-holdout", project=project,
                           target=target, pii=pii, label="holdout")
        self.say(f"data {added.version.ref}: {what}" + ("" if added.created else
                                                         " (already stored)"))
        self.say(f"gate holdout {kept.version.ref}: {holdout.num_rows} recent labelled rows "
                 f"({self.policy.holdout:.0%}, kept out of training)")
        return {"source": source.ref, "training": added.version.ref,
                "holdout": kept.version.ref}

    def _train(self, champion: ModelVersionRecord, project: str, training: str, target: str
               ) -> ModelVersionRecord:
        """Train and register the challenger with the project's search on ``training``."""
        from loopml.train.runner import train_project

        config = self.config
        kinds = {"number": [], "category": [], "datetime": []}
        for column in champion.signature.get("inputs", []):
            kinds.setdefault(column.get("kind", "number"), []).append(column["name"])
        settings = config.model_copy(update={
            "project": config.project.model_copy(update={"name": project}),
            "models": config.models.model_copy(update={"name": self.name}),
            "data": config.data.model_copy(update={
                "dataset": training, "source": None, "target": target, "task": champion.task,
                "pii": {}}),
            # The champion's inputs: the challenger must take what the server is sent.
            "features": config.features.model_copy(update={
                "numeric": kinds["number"], "categorical": kinds["category"],
                "datetime": kinds["datetime"], "drop": []}),
        })
        self.say(f"training a challenger on {training} with the project's search "
                 f"({', '.join(config.train.candidates)})")
        trained = train_project(settings, workspace=self.registry.workspace,
                                console=self.console, register=True)
        assert trained.version is not None  # register=True
        return trained.version

    def _story(self, alerts: list[AlertRecord], champion: ModelVersionRecord, source: str,
               datasets: dict[str, str], rows: dict[str, int], until_us: int, run_id: str
               ) -> str:
        why = (", ".join(f"{a.kind} alert #{a.id} on v{a.version}" for a in alerts)
               if alerts else "forced (no alert)")
        return (f"retrain (run {run_id[:12]}): {why}; challenger trained on "
                f"{datasets['training']} ({self.policy.data}: {rows['train']} labelled "
                f"production rows, labels up to {_iso(until_us)}"
                + (f" + {source}" if self.policy.data == "recent+training" else "")
                + f"), gated against v{champion.version} on {datasets['holdout']} "
                f"({rows['holdout']} recent rows)")

    def _promote(self, challenger: ModelVersionRecord, holdout: str, story: str, *,
                 base: dict[str, Any], **fields: Any) -> RetrainOutcome:
        from loopml.registry.promote import promote

        alias = self.policy.promote_to
        self.say(f"gating {challenger.ref} against {self.name}@{alias} on {holdout}")
        done = promote(self.registry, self.name, challenger.version, to=alias,
                       gates=self.gates, actor=ACTOR, reason=story, data=holdout,
                       sensitive=list(self.config.data.sensitive), seed=self.config.train.seed)
        report = done.report.to_json() if done.report is not None else None
        card = str(done.card_path) if done.card_path else None
        if done.moved:
            return self.outcome("promoted", f"promoted: {self.name}@{alias} → version "
                                f"{challenger.version} (every gate passed on {holdout})",
                                challenger=challenger.version, report=report, card=card,
                                **base, **fields)
        failed = [{"gate": g.name, "detail": g.detail} for g in done.report.failed] \
            if done.report is not None else []
        reasons = "; ".join(f"{f['gate']}: {f['detail']}" for f in failed)
        return self.outcome("refused", f"refused: {self.name}@{alias} stays at version "
                            f"{base['champion']}; {challenger.ref} failed {len(failed)} "
                            f"gate(s) — {reasons}", challenger=challenger.version,
                            report=report, failed=failed, card=card, **base, **fields)


# -- helpers ------------------------------------------------------------------------------------

def _alerts_line(alerts: list[AlertRecord]) -> str:
    shown = ", ".join(f"#{a.id} {a.kind} (v{a.version}, {a.created_at:%Y-%m-%d %H:%M})"
                      for a in alerts[:5])
    more = f" and {len(alerts) - 5} more" if len(alerts) > 5 else ""
    return f"triggered by {len(alerts)} alert(s): {shown}{more}"


def _run_that_made(earlier: list[dict[str, str]], version: int) -> dict[str, str] | None:
    for tags in earlier:
        if tags.get("challenger") == str(version):
            return tags
    return None


def _micros(tags: dict[str, str] | None, key: str) -> int | None:
    value = (tags or {}).get(key)
    return int(value) if value and value.lstrip("-").isdigit() else None


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="seconds")


def _select(rows: LabelledRows, recent_after: int | None, new_after: int | None
            ) -> tuple[Any, Any]:
    """Return the masks of recent and of new rows, by when their label arrived."""
    import numpy as np

    arrived = rows.table.column("label_ts").cast("int64").to_numpy()
    recent = arrived > recent_after if recent_after is not None else \
        np.ones(len(arrived), dtype=bool)
    new = recent & (arrived > new_after) if new_after is not None else recent
    return recent, new


def _part(table: pa.Table, mask: Any) -> pa.Table:
    import pyarrow as pa

    return table.filter(pa.array(mask))


def _target(record: ModelVersionRecord) -> str:
    outputs = record.signature.get("outputs", {})
    target = outputs.get("target") or outputs.get("value", {}).get("target")
    if not target:
        raise InvalidInput(f"retrain: {record.ref} names no target column in its signature")
    return target


def _absent_notes(typed: TypedRows, rows: int) -> list[str]:
    notes = []
    absent = [c for c in typed.absent if not c.startswith("__")]
    if absent:
        notes.append(f"not in the prediction log (it holds the model's inputs only): "
                     f"{', '.join(absent)}; empty in the {rows} production rows")
    for column, count in typed.invalid.items():
        notes.append(f"{count} logged value(s) of {column!r} do not fit its type in the "
                     "dataset: left empty")
    return notes


def _blockers(gates: GatesSection, config: ProjectConfig, catalog: Any, dataset: str,
              project: str, *, holdout: pa.Table, absent: list[str], target: str
              ) -> list[dict[str, str]]:
    """Return the gates that cannot pass on the holdout rows, each with why and the fix.

    Fairness needs its sensitive columns, which the log lacks unless they are inputs; the
    data contract is checked on the holdout now, as the gate would after training.
    """
    out = []
    missing = set(absent)
    for gate in gates.fairness:
        for column in gate.sensitive or list(config.data.sensitive):
            if column in missing:
                out.append({"gate": "fairness", "detail": (
                    f"{gate.metric} by {column!r} needs {column!r} in the holdout rows, but the "
                    "prediction log holds only the model's inputs; make it an input "
                    "(features.use_sensitive) or remove this fairness gate")})
    if not gates.data_contract:
        return out
    from loopml.monitor.retrain_data import contract_violations

    name = dataset.partition("@")[0]
    try:
        contract = catalog.contract(dataset, project=project)
    except NotFound:
        return out  # the gate says "no contract" itself
    never_missing = [c for c, rule in contract.columns.items()
                     if c in missing and c != target and not rule.nullable]
    if never_missing:
        out.append({"gate": "data_contract", "detail": (
            f"the contract of {name!r} says {', '.join(map(repr, never_missing))} are never "
            "missing, but the prediction log does not hold them, so every holdout row breaks "
            f"it; mark them nullable: true (loopml data contract {name} --set FILE) or set "
            "gates.data_contract: false")})
    broken = [v for v in (contract_violations(holdout, contract) if holdout.num_rows else [])
              if not (v.column in never_missing and v.rule == "nullable")]
    if broken:
        shown = "; ".join(f"{v.column!r}: {v.message} ({v.rows} rows)" for v in broken[:5])
        out.append({"gate": "data_contract", "detail": (
            f"{len(broken)} contract violation(s) in the {holdout.num_rows} holdout rows: "
            f"{shown}{'; …' if len(broken) > 5 else ''}; if the world has changed, widen "
            f"the contract (loopml data contract {name} --set FILE), or set "
            "gates.data_contract: false")})
    return out


def _record(run: Any, outcome: RetrainOutcome, tags: dict[str, Any]) -> RetrainOutcome:
    run.set_tags(tags)
    run.log_artifact(outcome.to_json(), "retrain.json")
    return outcome
