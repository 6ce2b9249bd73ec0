"""`loopml train`: plan, search, refit the best, evaluate on the test split, write the card."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.config import ProjectConfig
    from loopml.data import Catalog
    from loopml.store.datasets import VersionRecord
    from loopml.store.models import ModelVersionRecord
    from loopml.tracking import ActiveRun, TrackingClient
    from loopml.train.budget import Budget, Phases
    from loopml.train.model import TrainedModel
    from loopml.train.plan import TrainPlan
    from loopml.train.search import SearchResult
    from loopml.workspace import Workspace


@dataclass
class TrainOutcome:
    run_id: str
    model: TrainedModel
    card: dict[str, Any]
    card_path: Path
    search: SearchResult
    version: ModelVersionRecord | None = None


def train_project(config: ProjectConfig, *, workspace: Workspace, console: Console | None = None,
                  project_dir: Path | None = None, register: bool = True) -> TrainOutcome:
    """Run the whole training step of a project; Ctrl-C keeps the finished trials.

    The model is registered as the next version of ``models.name`` (default: the project's
    name) once its run has finished; ``project_dir`` (default: the working folder) is where
    the git commit of the user's project is read from, for the lineage.
    """
    from loopml.data import Catalog
    from loopml.data.catalog import workspace_pii_key
    from loopml.tracking import TrackingClient
    from loopml.train.plan import check_without_data, make_plan

    command_started = time.perf_counter()  # the budget is the whole command's
    check_without_data(config)  # before the source is read, hashed or stored
    client = TrackingClient.from_workspace(workspace)
    catalog = Catalog(client.store, client.artifacts, pii_key=workspace_pii_key(workspace))
    version = _ensure_dataset(config, catalog, console)
    # every config mistake surfaces here, before work
    plan = make_plan(config, catalog, version=version)
    try:
        tags = {"task": plan.task, "metric": plan.metric, "data": plan.version.ref,
                **git_commit(project_dir or Path.cwd())}
        with client.start_run("train", project=config.project.name, tags=tags) as run:
            outcome = _train(plan, run, client, catalog, workspace, console,
                             started=command_started)
        if register:
            outcome.version = _register(config, outcome, client, catalog, workspace, console)
        return outcome
    finally:
        client.close()


def _register(config: ProjectConfig, outcome: TrainOutcome, client: TrackingClient,
              catalog: Catalog, workspace: Workspace, console: Console | None
              ) -> ModelVersionRecord:
    from loopml.registry.signing import signing_key
    from loopml.registry.versions import register_run

    name = config.models.name or config.project.name
    version, _ = register_run(client, catalog, outcome.run_id, name=name, source="train",
                              key=signing_key(workspace, create=False))
    from rich.markup import escape

    _say(console, f"registered [bold]{escape(version.ref)}[/] (promote it with `loopml models "
                  f"promote {escape(version.name)} {version.version} --to champion`)")
    return version


def git_commit(folder: Path) -> dict[str, str]:
    """Return ``{"git_commit": sha}`` (``+dirty`` when files changed) of ``folder``, or {}."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {}  # no git, or a repository too slow to ask
    suffix = "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
    return {"git_commit": head.stdout.strip() + suffix}


def _ensure_dataset(config: ProjectConfig, catalog: Catalog, console: Console | None
                    ) -> VersionRecord | None:
    """Return the dataset version to train on; ``data.source`` is added on every call.

    The catalog keeps one version per content hash: a changed source becomes the next
    version, an unchanged one is the version that already holds it (nothing copied).
    """
    from rich.markup import escape

    from loopml.data import resolve_source
    from loopml.errors import NotFound

    data = config.data
    if not data.dataset:
        return None  # make_plan reports the missing name
    project = config.project.name
    if not data.source:
        try:
            version = catalog.get(data.dataset, project=project)
        except NotFound:
            return None  # make_plan reports it with the rest of the config
        _say(console, f"data {version.ref} (latest; no data.source)")
        return version
    try:
        latest = catalog.get(data.dataset, project=project)
    except NotFound:
        latest = None
    source = resolve_source(data.source, null_values=tuple(data.null_values),
                            encoding=data.encoding, format=data.format)
    result = catalog.add(source, name=data.dataset, project=project, target=data.target,
                         pii=data.pii)
    version = result.version
    if not result.created:
        note = "unchanged" if latest is None or latest.seq == version.seq else \
            f"same content as {version.ref}; latest is {latest.ref}"
    elif latest is None:
        note = f"new: {version.num_rows} rows"
    else:
        note = f"new: {version.num_rows} rows, {version.num_rows - latest.num_rows:+d}"
    _say(console, f"data {escape(version.ref)} ({note}) from {escape(data.source)}")
    return version


def _say(console: Console | None, text: str) -> None:
    if console is not None:
        console.print(text, soft_wrap=True)


def _train(plan: TrainPlan, run: ActiveRun, client: TrackingClient, catalog: Catalog,
           workspace: Workspace, console: Console | None, *, started: float | None = None
           ) -> TrainOutcome:
    from loopml.train.budget import Budget, Phases
    from loopml.train.search import SearchJob
    from loopml.train.workers import threads_for, workers_for

    train_cfg = plan.config.train
    for role in ("train", "validation", "test"):
        catalog.log_input(run.id, plan.version.ref, role=role, project=plan.config.project.name)
    run.log_params({
        "data": plan.version.ref, "task": plan.task, "metric": plan.metric,
        "candidates": ",".join(plan.candidates), "trials": train_cfg.trials,
        "time_budget_s": train_cfg.time_budget_s, "backend": train_cfg.backend,
        "seed": train_cfg.seed, "validation": plan.validation,
        "split": f"{plan.split.method} {plan.split.fractions} seed {plan.split.seed}",
    })
    workers = workers_for(train_cfg.n_jobs, train_cfg.trials)
    job = SearchJob(X=plan.X, y=plan.y, folds=plan.folds, features=plan.features,
                    task=plan.task, metric=plan.metric,
                    labels=list(range(len(plan.classes))), candidates=plan.candidates,
                    search_space={k: dict(v) for k, v in train_cfg.search_space.items()},
                    encoding=plan.config.features.categorical_encoding, seed=train_cfg.seed,
                    workspace=workspace, project=plan.config.project.name,
                    parent_run_id=run.id, threads_per_trial=threads_for(workers),
                    cost_aware=train_cfg.time_budget_s is not None)
    clock = Phases(started if started is not None else time.perf_counter())
    clock.end("prepare")
    from loopml.evaluate.metrics import get_metric

    fraction = len(plan.folds[0][0]) / max(len(plan.y), 1) if plan.folds else 0.8
    budget = Budget(train_cfg.time_budget_s, clock.started, folds=max(1, len(plan.folds)),
                    fraction=fraction, direction=get_metric(plan.metric).direction,
                    ensemble=train_cfg.ensemble)
    result = _search_with_progress(job, plan, workers, console, budget)
    seconds = clock.end("search")
    run.log_metrics({"trials_complete": result.complete, "search_seconds": seconds})
    if result.best_candidate is None:
        from loopml.errors import LoopmlError

        raise LoopmlError("no trial finished; raise train.trials or train.time_budget_s")
    run.set_tags({"best_candidate": result.best_candidate})
    run.log_metric(f"best_cv_{plan.metric}", result.best_score)
    from rich.markup import escape

    if result.interrupted:
        if console is not None:
            console.print(f"[yellow]interrupted[/]: {result.complete} finished trial(s) kept; "
                          f"best so far {result.best_candidate} {plan.metric}="
                          f"{result.best_score:.4f} {escape(str(result.best_params))}")
        run.log_artifact({"best_so_far": {"candidate": result.best_candidate,
                                          "params": result.best_params,
                                          "score": result.best_score}}, "search_best.json")
        raise KeyboardInterrupt
    from loopml.train.select import describe, final_model, refit_seconds, select

    costs = refit_seconds(result, folds=budget.folds, fraction=fraction)
    best = next((t for t in result.trials if t["state"] == "COMPLETE"
                 and t["model"] == result.best_candidate and t["value"] == result.best_score),
                None)
    # evaluation and explanations take about one refit of the best trial
    evaluation = budget.one_fit(best) if best is not None else 0.0
    selection = select(result, plan.y, task=plan.task, metric=plan.metric,
                       labels=job.labels, seed=train_cfg.seed, refit_seconds=costs,
                       time_left=budget.time_left(after=evaluation),
                       ensemble=train_cfg.ensemble)
    clock.end("select")
    model = final_model(plan, job, result, selection)
    clock.end("refit")
    outcome = _evaluate_and_record(plan, model, result, run, workspace, workers, seconds,
                                   clock=clock, budget=budget, selection=selection)
    if console is not None:
        metrics = outcome.card["evaluation"]["metrics"]
        chosen = describe(outcome.card)
        console.print(f"final: [bold]{chosen}[/] ({result.complete} trials, "
                      f"{seconds:.0f} s); test " + ", ".join(
                          f"{k} {v:.4f}" if v is not None else f"{k} undefined"
                          for k, v in metrics.items()))
        console.print(f"model card: {escape(str(outcome.card_path))}", soft_wrap=True)
    return outcome


def _search_with_progress(job: Any, plan: TrainPlan, workers: int, console: Console | None,
                          budget: Budget | None = None) -> SearchResult:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.train.search import run_search

    cfg = plan.config.train
    total = cfg.trials if cfg.trials is not None else cfg.time_budget_s
    with Progress(TextColumn("search"), BarColumn(), TextColumn("{task.fields[status]}"),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=console is None) as progress:
        task = progress.add_task("search", total=total, status="starting workers")
        started = time.time()

        def show(summary: SearchResult) -> None:
            done = sum(1 for t in summary.trials if t["state"] in ("COMPLETE", "PRUNED",
                                                                    "FAIL"))
            best = f"best {plan.metric} {summary.best_score:.4f} ({summary.best_candidate})" \
                if summary.best_score is not None else "no trial finished yet"
            completed = done if cfg.trials is not None else time.time() - started
            progress.update(task, completed=completed, status=f"{done} trials · {best}")

        return run_search(job, trials=cfg.trials,
                          time_budget_s=None if budget is None else budget.search_seconds(),
                          n_jobs=cfg.n_jobs, backend=cfg.backend, on_progress=show,
                          stop_when=None if budget is None else budget.should_stop)


ONNX_CHECK_BYTES = 50_000_000  # a larger stored model takes too long to convert here


def _onnx_check(model: TrainedModel, budget: Budget | None, *, size: int) -> dict[str, Any]:
    """Return whether the ensemble converts to one ONNX graph, and if not which member fails.

    An ensemble's members are of several kinds, so the card says at once whether all of them
    convert — when the budget leaves the seconds and the model (``size``: its stored bytes) is
    small enough to build the graph quickly; otherwise `loopml models export` answers it.
    """
    left = None if budget is None else budget.time_left()
    later = "; `loopml models export` checks it"
    if left is not None and left < 5.0:
        return {"checked": False, "reason": f"no time left in train.time_budget_s{later}"}
    if size > ONNX_CHECK_BYTES:
        return {"checked": False, "reason": f"the model is {size / 1e6:.0f} MB{later}"}
    from loopml.optimize.export import to_onnx

    started = time.perf_counter()
    try:
        size = len(to_onnx(model))
    except Exception as exc:  # no ONNX form (or a graph over 2 GiB) must not lose the run
        return {"checked": True, "exports": False,
                "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    return {"checked": True, "exports": True, "bytes": size,
            "seconds": round(time.perf_counter() - started, 3)}


def _evaluate_and_record(plan: TrainPlan, model: TrainedModel, result: SearchResult,
                         run: ActiveRun, workspace: Workspace, workers: int, seconds: float,
                         *, clock: Phases | None = None, budget: Budget | None = None,
                         selection: Any = None) -> TrainOutcome:
    from loopml.evaluate.card import card_json, render_card
    from loopml.evaluate.report import evaluate
    from loopml.registry import MODEL_ARTIFACT, dump_model
    from loopml.registry.signing import signing_key
    from loopml.train.select import card_section, rows_seen

    test = plan.parts["test"]
    evaluation = evaluate(model, test, test[plan.target], task=plan.task, metric=plan.metric,
                          input_columns=model.input_columns, classes=model.classes,
                          threshold=model.threshold, sensitive=plan.config.data.sensitive,
                          slice_columns=plan.features.categorical,
                          seed=plan.config.train.seed,
                          # explanations get half of what the budget still has
                          explain_seconds=None if budget is None or budget.seconds is None
                          else max(1.0, 0.5 * (budget.time_left() or 0.0)))
    run.log_metrics({f"test_{k}": v for k, v in evaluation["metrics"].items()
                     if v is not None})
    if clock is not None:
        clock.end("evaluation")
    card = {
        "name": f"{plan.config.project.name}/{plan.version.dataset}",
        "run_id": run.id, "task": plan.task, "target": plan.target, "metric": plan.metric,
        "model": {"candidate": model.candidate, "params": model.params,
                  "threshold": model.threshold, "classes": [str(c) for c in model.classes],
                  **card_section(selection, result)},
        "data": {"ref": plan.version.ref, "content_hash": plan.version.content_hash,
                 "rows": {k: len(v) for k, v in plan.parts.items()},
                 "split": asdict(plan.split), "rows_seen": rows_seen(plan, selection)},
        "features": asdict(plan.features),
        "evaluation": evaluation,
        "search": {"candidates": plan.candidates, "backend": plan.config.train.backend,
                   "workers": workers, "seconds": seconds, "validation": plan.validation,
                   "total": len(result.trials), "complete": result.complete,
                   "pruned": sum(1 for t in result.trials if t["state"] == "PRUNED"),
                   "best_score": result.best_score, "trials": result.trials},
        "config": plan.config.model_dump(mode="json"),
    }
    stored = dump_model(model, key=signing_key(workspace))
    if model.candidate == "ensemble":
        card["model"]["onnx"] = _onnx_check(model, budget, size=len(stored))
    if clock is not None:  # the card's own time is in the run's metrics, not in the card
        card["timings"] = {**clock.seconds, **({} if budget is None else budget.record())}
    html = render_card(card)
    run.log_artifact(stored, MODEL_ARTIFACT)
    run.log_artifact(card_json(card), "model_card.json")
    run.log_artifact(html.encode(), "model_card.html")
    folder = workspace.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-card-{run.id[:12]}.html"
    path.write_text(html, encoding="utf-8")
    if clock is not None:
        clock.end("card")
        run.log_metrics({f"phase_{name}_seconds": value for name, value in clock.seconds.items()})
        run.log_metric("phase_total_seconds", clock.total())
    return TrainOutcome(run_id=run.id, model=model, card=card, card_path=path, search=result)
