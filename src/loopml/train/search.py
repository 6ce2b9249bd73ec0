"""Hyperparameter search over the candidates with Optuna: budgets, pruning, parallel workers.

Every trial is a nested run of the search run, with its params and its score. Workers are
separate processes on local cores (``backend: local``) or Ray tasks (``backend: ray``);
they share one Optuna study through a journal file, so the search is one study whichever
engine runs it. The first trials try each candidate's defaults, which are good without
tuning, cheapest first; later trials pick their candidate by cost and promise
(:func:`choose_candidate`) and let TPE sample its parameters. Boosters stop on each fold's
validation rows, so their number of trees is found, not searched. Every complete trial
leaves its out-of-fold predictions (:mod:`loopml.train.library`), from which the final model is
selected (:mod:`loopml.train.select`). Where trials run is :mod:`loopml.train.workers`. Ctrl-C
stops the workers and keeps every finished trial.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.evaluate.metrics import get_metric, score
from loopml.train.library import OOF_FOLDER, load_library, save_oof

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from loopml.train.features import FeatureSet
    from loopml.workspace import Workspace

STUDY = "loopml"
# The progress display re-reads the whole study; once a second costs ~2% of a search.
POLL_S = 1.0
# The order the candidates' defaults run in: cheap and strong first, so that a short budget
# still finishes them; names not listed come last, in the order given.
COST_ORDER = ("linear", "logistic", "hist_gradient_boosting", "lightgbm", "xgboost",
              "extra_trees", "random_forest", "mlp")


@dataclass(frozen=True)
class SearchJob:
    """Everything a worker needs, pickled once to a file the workers read."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    features: FeatureSet
    task: str
    metric: str
    labels: list[int]
    candidates: list[str]
    search_space: dict[str, dict[str, Any]]
    encoding: str
    seed: int
    workspace: Workspace
    project: str
    parent_run_id: str
    threads_per_trial: int = 1
    # Under a time budget, later trials prefer cheap candidates (timings make that choice
    # machine-dependent); with a trial count alone the choice ignores time, so it repeats.
    cost_aware: bool = False


@dataclass
class SearchResult:
    best_candidate: str | None
    best_params: dict[str, Any]
    best_score: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    # trial number -> out-of-fold predictions for every search row (NaN where no fold
    # predicted it): the ensemble's library, read back before the search's folder goes
    library: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def complete(self) -> int:
        return sum(1 for t in self.trials if t["state"] == "COMPLETE")


def fit_pipeline(job: SearchJob, candidate: str, params: dict[str, Any], X: pd.DataFrame,
                 y: np.ndarray, *, n_jobs: int = 1) -> Any:
    """Return the fitted preprocessing + estimator pipeline of one configuration."""
    from sklearn.pipeline import Pipeline

    from loopml.train.features import build_preprocessor
    from loopml.train.trainers import get_trainer

    trainer = get_trainer(candidate)
    pipeline = Pipeline([
        ("features", build_preprocessor(job.features, X, tree_based=trainer.tree_based,
                                        encoding=job.encoding, task=job.task)),
        ("model", trainer.build(params, task=job.task, seed=job.seed, n_jobs=n_jobs)),
    ])
    return pipeline.fit(X, y)


def fit_fold(job: SearchJob, candidate: str, params: dict[str, Any], X: pd.DataFrame,
             y: np.ndarray, X_valid: pd.DataFrame, y_valid: np.ndarray, *, n_jobs: int = 1
             ) -> tuple[Any, dict[str, Any]]:
    """Return one fold's fitted pipeline and what its fit found (a booster's tree count).

    A trainer with ``fit_early_stopping`` stops on a share of the fold's training rows held
    out for it (:func:`stopping_rows`), not on the fold's validation rows: those rows' out-of-
    fold predictions rank the trials and weigh the ensemble, and a booster stopped on them
    would look better there than it is (on a few hundred rows, by far). The others are fitted
    as :func:`fit_pipeline` fits them, and find nothing.
    """
    import numpy as np
    from sklearn.pipeline import Pipeline

    from loopml.train.features import build_preprocessor
    from loopml.train.trainers import get_trainer

    trainer = get_trainer(candidate)
    stop = getattr(trainer, "fit_early_stopping", None)
    if stop is None:
        return fit_pipeline(job, candidate, params, X, y, n_jobs=n_jobs), {}
    features = build_preprocessor(job.features, X, tree_based=trainer.tree_based,
                                  encoding=job.encoding, task=job.task)
    # fit_transform, as a Pipeline's fit does (a target encoder cross-fits there)
    train_matrix = np.asarray(features.fit_transform(X, y), dtype=float)
    valid_matrix = np.asarray(features.transform(X_valid), dtype=float)
    estimator = trainer.build(params, task=job.task, seed=job.seed, n_jobs=n_jobs)
    held = stopping_rows(y, task=job.task, seed=job.seed)
    if held is None:  # too few rows to hold some out: stop on the fold's validation rows
        found = stop(estimator, train_matrix, y, valid_matrix, y_valid)
    else:
        fit, stopping = held
        found = stop(estimator, train_matrix[fit], y[fit], train_matrix[stopping], y[stopping])
    return Pipeline([("features", features), ("model", estimator)]), dict(found or {})


STOP_SHARE = 0.15  # of a fold's training rows, held out to stop a booster on
MIN_STOP_ROWS = 20


def stopping_rows(y: np.ndarray, *, task: str, seed: int
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (rows to fit, rows to stop on) of a fold's training rows, or None if too few.

    Stratified by class where every class has two rows; seeded, so a trial repeats.

    >>> import numpy as np
    >>> fit, stop = stopping_rows(np.array([0, 1] * 100), task="binary", seed=0)
    >>> len(fit), len(stop), int(np.array([0, 1] * 100)[stop].sum())
    (170, 30, 15)
    >>> stopping_rows(np.zeros(30), task="regression", seed=0) is None
    True
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    held = max(MIN_STOP_ROWS, int(round(STOP_SHARE * len(y))))
    if len(y) - held < MIN_STOP_ROWS:
        return None
    rows = np.arange(len(y))
    stratify = None
    if task != "regression" and np.bincount(np.asarray(y, dtype=int)).clip(max=2)[
            np.unique(np.asarray(y, dtype=int))].min() >= 2:
        stratify = y
    fit, stop = train_test_split(rows, test_size=held, random_state=seed, stratify=stratify)
    return np.sort(fit), np.sort(stop)


def predictions(job: SearchJob, pipeline: Any, X: pd.DataFrame) -> np.ndarray:
    """Return what the ensemble averages: values (regression) or one column per class."""
    if job.task == "regression":
        import numpy as np

        return np.asarray(pipeline.predict(X), dtype=float)
    return full_proba(pipeline, X, len(job.labels))


def score_predictions(job: SearchJob, y: np.ndarray, predicted: np.ndarray) -> float:
    """Return the search metric of :func:`predictions` (the class of the highest probability)."""
    if job.task == "regression":
        return score(job.metric, y, predicted, None, labels=job.labels)
    return score(job.metric, y, predicted.argmax(axis=1), predicted, labels=job.labels)


def full_proba(pipeline: Any, X: pd.DataFrame, classes: int) -> np.ndarray:
    """Return probabilities with a column for every class, even one a fold never saw."""
    import numpy as np

    proba = pipeline.predict_proba(X)
    seen = np.asarray(pipeline.classes_, dtype=int)
    if proba.shape[1] == classes and (seen == np.arange(classes)).all():
        return proba
    out = np.zeros((len(proba), classes))
    out[:, seen] = proba
    return out


def _sample(job: SearchJob, trial: optuna.Trial) -> tuple[str, dict[str, Any]]:
    from loopml.train.trainers import get_trainer, suggest_from_space

    fixed = trial.storage.get_trial_system_attrs(trial._trial_id).get("fixed_params") or {}
    if "model" in fixed:  # a queued trial: a candidate's defaults
        candidate = trial.suggest_categorical("model", job.candidates)
    else:
        import optuna

        states = optuna.trial.TrialState
        done = trial.study.get_trials(deepcopy=False, states=(
            states.COMPLETE, states.PRUNED, states.FAIL))
        candidate = choose_candidate(job, done, seed=job.seed * 100_003 + trial.number)
        trial.set_user_attr("model", candidate)
    trainer = get_trainer(candidate)
    if candidate in job.search_space:
        params = trainer.defaults(job.task)
        params.update(suggest_from_space(trial, candidate, job.search_space[candidate]))
    else:
        params = trainer.suggest(trial, job.task)
    # every parameter the fold models were built with, not only the sampled ones (defaults
    # and a trainer's constants): the refit must build the model that was cross-validated
    trial.set_user_attr("params", _plain(params))
    return candidate, params


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` as JSON values (numpy scalars as numbers), as Optuna stores them."""
    import json

    return json.loads(json.dumps(params, default=lambda v: v.item() if hasattr(v, "item")
                                 else list(v) if isinstance(v, tuple | set) else str(v)))


def choose_candidate(job: SearchJob, done: list[Any], *, seed: int) -> str:
    """Return the candidate of a trial after the defaults: likely to improve, cheaply.

    Each candidate is weighted by how close its best score is to the best of all
    (``exp(-gap / spread)``, the spread being that of the candidates' bests) and, under a time
    budget, by its cost (``1 / sqrt(median trial seconds)``), as FLAML's cost-frugal order
    prefers cheap learners while they keep up. The draw is seeded by the trial number. A
    candidate with nothing left to search (a linear model choosing its own regularisation)
    runs once; one with no complete trial is tried again once (its default may have been
    pruned or failed), then left out.
    """
    import random
    import statistics

    import optuna

    rng = random.Random(seed)
    stats: dict[str, tuple[float, float]] = {}
    failed: dict[str, int] = {}
    for name in job.candidates:
        runs = [t for t in done if _model_of(t) == name and t.value is not None
                and t.state == optuna.trial.TrialState.COMPLETE]
        if runs:
            stats[name] = (max(t.value for t in runs), statistics.median(
                t.duration.total_seconds() if t.duration else 1.0 for t in runs))
        else:
            failed[name] = sum(1 for t in done if _model_of(t) == name)
    # a candidate none of whose trials completed gets one more try, then no more
    open_ = [c for c in job.candidates
             if (c in stats and _searchable(job, c)) or (c not in stats and failed[c] < 2)]
    if not open_:
        return max(stats, key=lambda c: stats[c][0]) if stats else job.candidates[0]
    untried = [c for c in open_ if c not in stats]
    if untried:
        return untried[0]
    best = max(stats[c][0] for c in open_)
    spread = statistics.pstdev(v for v, _ in stats.values()) if len(stats) > 1 else 0.0
    weights = []
    for name in open_:
        value, seconds = stats[name]
        closeness = math.exp(-(best - value) / spread) if spread > 0 else 1.0
        cost = 1.0 / math.sqrt(max(seconds, 1e-3)) if job.cost_aware else 1.0
        weights.append(closeness * cost)
    return rng.choices(open_, weights=weights)[0]


def _model_of(trial: Any) -> str | None:
    return trial.params.get("model") or trial.user_attrs.get("model")


def _searchable(job: SearchJob, candidate: str) -> bool:
    """Return whether ``candidate`` has parameters to sample (the user's space or its own)."""
    import optuna

    from loopml.train.trainers import get_trainer

    if job.search_space.get(candidate):
        return True
    try:  # a fixed trial with no values answers any suggest with an error
        return bool(get_trainer(candidate).suggest(optuna.trial.FixedTrial({}), job.task))
    except ValueError:
        return True


def make_objective(job: SearchJob, client: Any, deadline: float | None = None,
               stop_path: str | None = None, oof_dir: str | None = None
               ) -> Callable[[optuna.Trial], float]:
    import numpy as np
    import optuna

    sign = get_metric(job.metric).direction

    def objective(trial: optuna.Trial) -> float:
        candidate, params = _sample(job, trial)
        started = time.perf_counter()
        pruned = False
        with client.start_run(f"trial-{trial.number}", project=job.project,
                              parent=job.parent_run_id, tags={"candidate": candidate}) as run:
            run.log_params({"model": candidate, **params})
            scores: list[float] = []
            oof: np.ndarray | None = None
            seen = np.zeros(len(job.y))
            found: list[dict[str, Any]] = []
            for index, (train_rows, valid_rows) in enumerate(job.folds):
                X_valid, y_valid = job.X.iloc[valid_rows], job.y[valid_rows]
                pipeline, fold_found = fit_fold(job, candidate, params,
                                                job.X.iloc[train_rows], job.y[train_rows],
                                                X_valid, y_valid, n_jobs=job.threads_per_trial)
                predicted = predictions(job, pipeline, X_valid)
                scores.append(score_predictions(job, y_valid, predicted))
                if oof is None:
                    oof = np.zeros((len(job.y), *predicted.shape[1:]))
                oof[valid_rows] += predicted  # repeated folds predict a row more than once
                seen[valid_rows] += 1
                found.append(fold_found)
                run.log_metric(f"fold_{job.metric}", scores[-1], step=index)
                if not all(math.isnan(v) for v in scores):  # e.g. AUC on a fold of one class
                    trial.report(sign * float(np.nanmean(scores)), index)
                out_of_time = (deadline is not None and time.time() > deadline) or (
                    stop_path is not None and os.path.exists(stop_path))
                if index + 1 < len(job.folds) and out_of_time and not _any_complete(trial):
                    # nothing finished in the budget: the folds done are the search's answer
                    trial.set_user_attr("folds_done", index + 1)
                    run.log_params({"folds_done": index + 1})
                    break
                if index + 1 < len(job.folds) and (out_of_time or trial.should_prune()):
                    pruned = True  # a trial never runs far past the budget
                    break
            trial.set_user_attr("folds_done", len(scores))
            # the score of the pooled out-of-fold predictions: every row once (averaged over
            # repeats), defined even where one fold lacks a class; what the selection compares
            value = _pooled_score(job, oof, seen) if not pruned else float(np.nanmean(scores))
            found_mean = _mean_found(found)
            if found_mean:
                trial.set_user_attr("found", found_mean)
                run.log_params({f"found_{k}": v for k, v in found_mean.items()})
            run.log_metrics({job.metric: value, "fit_seconds": time.perf_counter() - started})
            run.set_tags({"state": "PRUNED" if pruned else "COMPLETE"})
        if pruned or not math.isfinite(value):
            raise optuna.TrialPruned()
        if oof_dir is not None and oof is not None:
            save_oof(Path(oof_dir), trial.number, oof, seen)
        return sign * value

    return objective


def _pooled_score(job: SearchJob, oof: np.ndarray | None, seen: np.ndarray) -> float:
    covered = seen > 0
    if oof is None or not covered.any():
        return float("nan")
    mean = oof[covered] / seen[covered].reshape(-1, *([1] * (oof.ndim - 1)))
    return float(score_predictions(job, job.y[covered], mean))


def _any_complete(trial: optuna.Trial) -> bool:
    import optuna

    return bool(trial.study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.COMPLETE,)))


def _mean_found(found: list[dict[str, Any]]) -> dict[str, int]:
    """Return the folds' found counts averaged (what the refit on all rows uses).

    >>> _mean_found([{"n_estimators": 100}, {"n_estimators": 151}])
    {'n_estimators': 126}
    """
    keys = set().union(*found) if found else set()
    return {k: max(1, int(round(sum(f[k] for f in found if k in f) /
                                sum(1 for f in found if k in f)))) for k in sorted(keys)}


def create_study(storage_path: Path, job: SearchJob) -> optuna.Study:
    """Create the shared study and queue each candidate's defaults as its first trials."""
    import optuna

    from loopml.train.trainers import get_trainer

    study = optuna.create_study(
        study_name=STUDY, storage=storage(storage_path), direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=job.seed, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=1),
    )
    for candidate in sorted(job.candidates, key=cost_rank):
        defaults = get_trainer(candidate).defaults(job.task)
        space = job.search_space.get(candidate, {})
        # A default outside the user's range would fail the trial; that key is sampled.
        defaults = {k: v for k, v in defaults.items() if k not in space or _fits(space[k], v)}
        study.enqueue_trial({"model": candidate,
                             **{f"{candidate}.{k}": v for k, v in defaults.items()}},
                            skip_if_exists=True)
    return study


def cost_rank(candidate: str) -> int:
    """Return where ``candidate``'s defaults run in the queue (see COST_ORDER).

    >>> sorted(["random_forest", "lightgbm", "linear"], key=cost_rank)
    ['linear', 'lightgbm', 'random_forest']
    """
    return COST_ORDER.index(candidate) if candidate in COST_ORDER else len(COST_ORDER)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Show only Optuna's warnings inside the block, then restore the caller's log level.

    Optuna's level is process-wide: a search run from a notebook must not change it.
    """
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _fits(spec: Any, value: Any) -> bool:
    """Return whether ``value`` lies in a user's search range (a ``ParamRange``)."""
    if spec.choices is not None:
        return value in spec.choices
    return isinstance(value, int | float) and spec.low <= value <= spec.high and \
        (not spec.int or float(value).is_integer())


def storage(path: Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def summarize(storage_path: Path, metric: str, *, interrupted: bool = False) -> SearchResult:
    """Read the shared study back: every trial, and the best complete one."""
    import optuna

    study = optuna.load_study(study_name=STUDY, storage=storage(storage_path))
    sign = get_metric(metric).direction
    trials = []
    for t in study.get_trials(deepcopy=False):
        value = None if t.value is None else sign * t.value
        params = {k: v for k, v in t.params.items() if k != "model"}
        trials.append({"number": t.number, "state": t.state.name, "value": value,
                       "model": _model_of(t), "params": params,
                       "built_with": t.user_attrs.get("params"),
                       "found": dict(t.user_attrs.get("found") or {}),
                       "folds": t.user_attrs.get("folds_done"),
                       "seconds": t.duration.total_seconds() if t.duration else None})
    complete = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not complete:
        return SearchResult(None, {}, None, trials, interrupted)
    best = max(complete, key=lambda t: sign * t["value"])
    return SearchResult(best["model"], trial_params(best), best["value"], trials, interrupted)


def trial_params(trial: dict[str, Any]) -> dict[str, Any]:
    """Return the estimator parameters a trial's refit uses: those its folds were built with
    (sampled, defaults and constants), then what the folds found.

    >>> trial_params({"model": "lightgbm", "params": {"lightgbm.num_leaves": 15},
    ...               "built_with": {"num_leaves": 15, "subsample_freq": 1},
    ...               "found": {"n_estimators": 87}})
    {'num_leaves': 15, 'subsample_freq': 1, 'n_estimators': 87}
    """
    built = trial.get("built_with")
    if built is None:  # a study from before the parameters were kept: what was sampled
        prefix = f"{trial['model']}."
        built = {k[len(prefix):]: v for k, v in trial["params"].items() if k.startswith(prefix)}
    return {**built, **(trial.get("found") or {})}


def run_search(job: SearchJob, *, trials: int | None, time_budget_s: float | None,
               n_jobs: int, backend: str, on_progress: Callable[[SearchResult], None] | None
               = None, stop_when: Callable[[SearchResult], bool] | None = None
               ) -> SearchResult:
    """Run the search; return its summary. Ctrl-C returns what finished, marked interrupted.

    ``stop_when`` is asked with each progress summary; once it answers True, workers start
    no new trial and end the running ones at their next fold (the caller's reserve for what
    comes after the search, measured from the trials' own times).
    """
    import joblib

    from loopml.train.workers import run_in_process, run_on_processes, run_on_ray, workers_for

    deadline = None if time_budget_s is None else time.time() + time_budget_s
    workers = workers_for(n_jobs, trials)
    # The pid in the name tells `loopml gc` the folder belongs to a live command.
    with quiet_optuna(), tempfile.TemporaryDirectory(prefix=f"loopml-search-{os.getpid()}-"
                                                     ) as tmp:
        job_path = Path(tmp, "job.joblib")
        storage_path = Path(tmp, "study.journal")
        stop_path = Path(tmp, "stop")
        joblib.dump(job, job_path)
        create_study(storage_path, job)
        interrupted = False

        def progress(summary: SearchResult) -> None:
            if on_progress is not None:
                on_progress(summary)
            if stop_when is not None and not stop_path.exists() and stop_when(summary):
                stop_path.touch()

        try:
            if backend == "ray":
                run_on_ray(job_path, storage_path, trials, deadline, workers, progress,
                            job.metric, stop_path)
            elif workers == 1:
                run_in_process(job_path, storage_path, trials, deadline, progress,
                                job.metric, stop_path)
            else:
                run_on_processes(job_path, storage_path, trials, deadline, workers,
                                  progress, job.metric, stop_path)
        except KeyboardInterrupt:
            interrupted = True
        result = summarize(storage_path, job.metric, interrupted=interrupted)
        if not interrupted:
            result.library = load_library(Path(tmp, OOF_FOLDER), result, job.metric)
    return result

