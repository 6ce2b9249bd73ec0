"""Hyperparameter search over the candidates with Optuna: budgets, pruning, parallel workers.

Every trial is a nested run of the search run, with its params and its score. Workers are
separate processes on local cores (``backend: local``) or Ray tasks (``backend: ray``);
they share one Optuna study through a journal file, so the search is one study whichever
engine runs it. The first trials try each candidate's defaults, which are good without
tuning. Ctrl-C stops the workers and keeps every finished trial.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.evaluate.metrics import get_metric, score

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from loopml.train.features import FeatureSet
    from loopml.workspace import Workspace

STUDY = "loopml"
# The progress display re-reads the whole study; once a second costs ~2% of a search.
POLL_S = 1.0


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


@dataclass
class SearchResult:
    best_candidate: str | None
    best_params: dict[str, Any]
    best_score: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

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


def score_pipeline(job: SearchJob, pipeline: Any, X: pd.DataFrame, y: np.ndarray) -> float:
    if job.task == "regression":
        return score(job.metric, y, pipeline.predict(X), None, labels=job.labels)
    proba = full_proba(pipeline, X, len(job.labels))
    predicted = proba.argmax(axis=1)
    return score(job.metric, y, predicted, proba, labels=job.labels)


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

    candidate = trial.suggest_categorical("model", job.candidates)
    trainer = get_trainer(candidate)
    if candidate in job.search_space:
        params = trainer.defaults(job.task)
        params.update(suggest_from_space(trial, candidate, job.search_space[candidate]))
    else:
        params = trainer.suggest(trial, job.task)
    return candidate, params


def _objective(job: SearchJob, client: Any, deadline: float | None = None,
               stop_path: str | None = None) -> Callable[[optuna.Trial], float]:
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
            for index, (train_rows, valid_rows) in enumerate(job.folds):
                pipeline = fit_pipeline(job, candidate, params, job.X.iloc[train_rows],
                                        job.y[train_rows], n_jobs=job.threads_per_trial)
                scores.append(score_pipeline(job, pipeline, job.X.iloc[valid_rows],
                                             job.y[valid_rows]))
                run.log_metric(f"fold_{job.metric}", scores[-1], step=index)
                trial.report(sign * float(np.mean(scores)), index)
                out_of_time = (deadline is not None and time.time() > deadline) or (
                    stop_path is not None and os.path.exists(stop_path))
                if index + 1 < len(job.folds) and (out_of_time or trial.should_prune()):
                    pruned = True  # a trial never runs far past the budget
                    break
            value = float(np.mean(scores))
            run.log_metrics({job.metric: value, "fit_seconds": time.perf_counter() - started})
            run.set_tags({"state": "PRUNED" if pruned else "COMPLETE"})
        if pruned or not math.isfinite(value):
            raise optuna.TrialPruned()
        return sign * value

    return objective


def create_study(storage_path: Path, job: SearchJob) -> optuna.Study:
    """Create the shared study and queue each candidate's defaults as its first trials."""
    import optuna

    from loopml.train.trainers import get_trainer

    study = optuna.create_study(
        study_name=STUDY, storage=_storage(storage_path), direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=job.seed, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=1),
    )
    for candidate in job.candidates:
        defaults = get_trainer(candidate).defaults(job.task)
        space = job.search_space.get(candidate, {})
        # A default outside the user's range would fail the trial; that key is sampled.
        defaults = {k: v for k, v in defaults.items() if k not in space or _fits(space[k], v)}
        study.enqueue_trial({"model": candidate,
                             **{f"{candidate}.{k}": v for k, v in defaults.items()}},
                            skip_if_exists=True)
    return study


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


def _storage(path: Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps OpenMP and BLAS pools, read when those libraries load.

    >>> thread_env(1)["OMP_NUM_THREADS"]
    '1'
    """
    return {name: str(threads) for name in THREAD_VARIABLES}


def run_worker(job_path: str, storage_path: str, n_trials: int | None, deadline: float | None,
               worker: int, threads: int | None = None, stop_path: str | None = None) -> int:
    """Run trials of the shared study until the trial count or the deadline; return how many.

    ``threads`` caps this process's OpenMP/BLAS pools; it is only given in worker
    processes, where it is set before numpy and scikit-learn load their thread pools.
    """
    if threads is not None:
        os.environ.update(thread_env(threads))
    import joblib
    import optuna
    from threadpoolctl import threadpool_limits

    from loopml.tracking import TrackingClient

    job: SearchJob = joblib.load(job_path)
    study = optuna.load_study(
        study_name=STUDY, storage=_storage(Path(storage_path)),
        sampler=optuna.samplers.TPESampler(seed=job.seed + worker, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=1),
    )
    # Each worker gets its share of the cores: without a limit, every worker's OpenMP and
    # BLAS pools take all cores and parallel trials run slower than serial ones. The
    # environment covers pools not loaded yet; threadpoolctl the ones already loaded.
    limits = threadpool_limits(limits=threads) if threads is not None else None
    client = TrackingClient.from_workspace(job.workspace)
    callbacks = []
    if n_trials is not None:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                  optuna.trial.TrialState.FAIL)
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=states))
    if stop_path is not None:  # the command asked the search to end (its time is reserved)
        def stop_if_asked(study: optuna.Study, _: Any) -> None:
            if os.path.exists(stop_path):
                study.stop()

        callbacks.append(stop_if_asked)
    timeout = None if deadline is None else max(0.0, deadline - time.time())
    before = len(study.trials)
    try:
        with quiet_optuna():
            study.optimize(_objective(job, client, deadline, stop_path), n_trials=n_trials,
                           timeout=timeout, callbacks=callbacks,
                           catch=(ValueError, ArithmeticError), gc_after_trial=False)
    finally:
        client.close()
        if limits is not None:
            limits.restore_original_limits()
    return len(study.trials) - before


def summarize(storage_path: Path, metric: str, *, interrupted: bool = False) -> SearchResult:
    """Read the shared study back: every trial, and the best complete one."""
    import optuna

    study = optuna.load_study(study_name=STUDY, storage=_storage(storage_path))
    sign = get_metric(metric).direction
    trials = []
    for t in study.get_trials(deepcopy=False):
        value = None if t.value is None else sign * t.value
        trials.append({"number": t.number, "state": t.state.name, "value": value,
                       "model": t.params.get("model"), "params": dict(t.params),
                       "seconds": t.duration.total_seconds() if t.duration else None})
    complete = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not complete:
        return SearchResult(None, {}, None, trials, interrupted)
    best = max(complete, key=lambda t: sign * t["value"])
    prefix = f"{best['model']}."
    params = {k[len(prefix):]: v for k, v in best["params"].items() if k.startswith(prefix)}
    return SearchResult(best["model"], params, best["value"], trials, interrupted)


def workers_for(n_jobs: int, trials: int | None = None) -> int:
    """Return how many trial workers to start: ``train.n_jobs`` (-1: one per core), never
    more than there are trials.

    >>> workers_for(5, trials=1), workers_for(2), workers_for(8, trials=3)
    (1, 2, 3)
    """
    cores = os.cpu_count() or 1
    workers = cores if n_jobs == -1 else max(1, min(n_jobs, 64))
    return workers if trials is None else max(1, min(workers, trials))


def threads_for(workers: int) -> int:
    """Return the threads each worker's models may use, so workers × threads = cores."""
    return max(1, (os.cpu_count() or 1) // workers)


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
                _run_on_ray(job_path, storage_path, trials, deadline, workers, progress,
                            job.metric, stop_path)
            elif workers == 1:
                _run_in_process(job_path, storage_path, trials, deadline, progress,
                                job.metric, stop_path)
            else:
                _run_on_processes(job_path, storage_path, trials, deadline, workers,
                                  progress, job.metric, stop_path)
        except KeyboardInterrupt:
            interrupted = True
        result = summarize(storage_path, job.metric, interrupted=interrupted)
    return result


def _run_in_process(job_path: Path, storage_path: Path, trials: int | None,
                    deadline: float | None, on_progress: Any, metric: str,
                    stop_path: Path | None = None) -> None:
    import threading

    done = threading.Event()
    worker = threading.Thread(target=_poll, args=(storage_path, metric, on_progress, done),
                              daemon=True)
    worker.start()
    try:
        run_worker(str(job_path), str(storage_path), trials, deadline, 0,
                   stop_path=None if stop_path is None else str(stop_path))
    finally:
        done.set()
        worker.join()


def _poll(storage_path: Path, metric: str, on_progress: Any, done: Any) -> None:
    while not done.wait(POLL_S):
        if on_progress is not None:
            # A progress display must never stop a search.
            with contextlib.suppress(Exception):
                on_progress(summarize(storage_path, metric))


def _run_on_processes(job_path: Path, storage_path: Path, trials: int | None,
                      deadline: float | None, workers: int, on_progress: Any,
                      metric: str, stop_path: Path | None = None) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    threads = threads_for(workers)
    processes = [context.Process(target=run_worker, name=f"loopml-trial-worker-{i}",
                                 args=(str(job_path), str(storage_path), trials, deadline, i,
                                       threads, None if stop_path is None else str(stop_path)),
                                 daemon=True)
                 for i in range(workers)]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(summarize(storage_path, metric))
            for process in processes:
                process.join(timeout=POLL_S / workers)
        failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
        if failed and summarize(storage_path, metric).best_candidate is None:
            from loopml.errors import LoopmlError

            raise LoopmlError(f"search workers failed (exit codes {failed}) before finishing "
                              "a trial; run with train.n_jobs: 1 to see the error")
    except KeyboardInterrupt:
        # Let the workers stop as after Ctrl-C themselves (their trial runs end KILLED, their
        # metrics flushed); only those that do not stop in time are terminated.
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGINT)
        for process in processes:
            process.join(timeout=10)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        raise


def _run_on_ray(job_path: Path, storage_path: Path, trials: int | None, deadline: float | None,
                workers: int, on_progress: Any, metric: str,
                stop_path: Path | None = None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if os.environ.get(
            "RAY_ADDRESS") else workers, include_dashboard=False, log_to_driver=False,
            ignore_reinit_error=True)
    threads = threads_for(workers)
    remote = ray.remote(num_cpus=1, runtime_env={"env_vars": thread_env(threads)})(run_worker)
    # the stop flag is a local file: seen by workers on this machine (a local Ray), not
    # by a remote cluster's, whose trials end at the deadline instead
    pending = [remote.remote(str(job_path), str(storage_path), trials, deadline, i, threads,
                             None if stop_path is None else str(stop_path))
               for i in range(workers)]
    try:
        while pending:
            done, pending = ray.wait(pending, timeout=POLL_S)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    from loopml.errors import LoopmlError

                    raise LoopmlError(f"a Ray search worker failed: "
                                      f"{str(exc).strip().splitlines()[-1]}") from exc
            if on_progress is not None:
                on_progress(summarize(storage_path, metric))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
