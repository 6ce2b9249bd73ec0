"""`loopml train`: plan, search, refit the best, evaluate on the test split, write the card."""

from __future__ import annotations

import os
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
            outcome = _train(plan, run, client, catalog, workspace, console)
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
           workspace: Workspace, console: Console | None) -> TrainOutcome:
    from loopml.train.search import SearchJob, threads_for, workers_for

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
                    parent_run_id=run.id, threads_per_trial=threads_for(workers))
    started = time.perf_counter()
    result = _search_with_progress(job, plan, workers, console)
    seconds = time.perf_counter() - started
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
    model = _refit(plan, job, result)
    outcome = _evaluate_and_record(plan, model, result, run, workspace, workers, seconds)
    if console is not None:
        metrics = outcome.card["evaluation"]["metrics"]
        console.print(f"best: [bold]{result.best_candidate}[/] ({result.complete} trials, "
                      f"{seconds:.0f} s); test " + ", ".join(
                          f"{k} {v:.4f}" if v is not None else f"{k} undefined"
                          for k, v in metrics.items()))
        console.print(f"model card: {escape(str(outcome.card_path))}", soft_wrap=True)
    return outcome


def _search_with_progress(job: Any, plan: TrainPlan, workers: int, console: Console | None
                          ) -> SearchResult:
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

        return run_search(job, trials=cfg.trials, time_budget_s=cfg.time_budget_s,
                          n_jobs=cfg.n_jobs, backend=cfg.backend, on_progress=show)


def _refit(plan: TrainPlan, job: Any, result: SearchResult) -> TrainedModel:
    """Choose the threshold on the validation rows, then refit on train + validation."""
    from loopml.evaluate.curves import choose_threshold
    from loopml.train.model import TrainedModel
    from loopml.train.search import fit_pipeline

    candidate, params = result.best_candidate, result.best_params
    threshold = 0.5
    if plan.task == "binary" and len(plan.parts["validation"]):
        train, valid = plan.parts["train"], plan.parts["validation"]
        pipeline = fit_pipeline(job, candidate, params, train[plan.features.columns],
                                plan.encode(train[plan.target]))
        proba = pipeline.predict_proba(valid[plan.features.columns])[:, 1]
        threshold, _ = choose_threshold(plan.encode(valid[plan.target]), proba, plan.metric)
    pipeline = fit_pipeline(job, candidate, params, plan.X, plan.y, n_jobs=os.cpu_count() or 1)
    return TrainedModel(pipeline=pipeline, task=plan.task, target=plan.target,
                        input_columns=plan.features.columns, classes=plan.classes,
                        threshold=threshold, candidate=candidate, params=params)


def _evaluate_and_record(plan: TrainPlan, model: TrainedModel, result: SearchResult,
                         run: ActiveRun, workspace: Workspace, workers: int, seconds: float
                         ) -> TrainOutcome:
    from loopml.evaluate.card import card_json, render_card
    from loopml.evaluate.report import evaluate
    from loopml.registry import MODEL_ARTIFACT, dump_model
    from loopml.registry.signing import signing_key

    test = plan.parts["test"]
    evaluation = evaluate(model, test, test[plan.target], task=plan.task, metric=plan.metric,
                          input_columns=model.input_columns, classes=model.classes,
                          threshold=model.threshold, sensitive=plan.config.data.sensitive,
                          slice_columns=plan.features.categorical,
                          seed=plan.config.train.seed)
    run.log_metrics({f"test_{k}": v for k, v in evaluation["metrics"].items()
                     if v is not None})
    card = {
        "name": f"{plan.config.project.name}/{plan.version.dataset}",
        "run_id": run.id, "task": plan.task, "target": plan.target, "metric": plan.metric,
        "model": {"candidate": model.candidate, "params": model.params,
                  "threshold": model.threshold, "classes": [str(c) for c in model.classes]},
        "data": {"ref": plan.version.ref, "content_hash": plan.version.content_hash,
                 "rows": {k: len(v) for k, v in plan.parts.items()},
                 "split": asdict(plan.split)},
        "features": asdict(plan.features),
        "evaluation": evaluation,
        "search": {"candidates": plan.candidates, "backend": plan.config.train.backend,
                   "workers": workers, "seconds": seconds, "validation": plan.validation,
                   "total": len(result.trials), "complete": result.complete,
                   "pruned": sum(1 for t in result.trials if t["state"] == "PRUNED"),
                   "best_score": result.best_score, "trials": result.trials},
        "config": plan.config.model_dump(mode="json"),
    }
    html = render_card(card)
    run.log_artifact(dump_model(model, key=signing_key(workspace)), MODEL_ARTIFACT)
    run.log_artifact(card_json(card), "model_card.json")
    run.log_artifact(html.encode(), "model_card.html")
    folder = workspace.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-card-{run.id[:12]}.html"
    path.write_text(html, encoding="utf-8")
    return TrainOutcome(run_id=run.id, model=model, card=card, card_path=path, search=result)
