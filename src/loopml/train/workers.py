"""Where trials run: this process, worker processes on local cores, or Ray tasks.

Every worker runs trials of the one shared Optuna study (:mod:`loopml.train.search`) until the
trial count, the deadline, or the command asks the search to stop (a flag file beside the
study). Each worker gets its share of the cores, so workers × threads = cores. Once the stop
is asked, worker processes' and Ray tasks' running trials are interrupted (they end as after
Ctrl-C, quietly); this process's own trial ends at its next fold.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from loopml.train import search
from loopml.train.library import OOF_FOLDER

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

    job: search.SearchJob = joblib.load(job_path)
    study = optuna.load_study(
        study_name=search.STUDY, storage=search.storage(Path(storage_path)),
        sampler=optuna.samplers.TPESampler(seed=job.seed + worker, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=1),
    )
    # Each worker gets its share of the cores: without a limit, every worker's OpenMP and
    # BLAS pools take all cores and parallel trials run slower than serial ones. The
    # environment covers pools not loaded yet; threadpoolctl the ones already loaded.
    limits = threadpool_limits(limits=threads) if threads is not None else None
    restore = _quiet_when_stopped(stop_path) if threads is not None and stop_path else None
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
        with search.quiet_optuna():
            study.optimize(search.make_objective(job, client, deadline, stop_path,
                                                 oof_dir=str(Path(storage_path).parent /
                                                             OOF_FOLDER)),
                           n_trials=n_trials,
                           timeout=timeout, callbacks=callbacks,
                           catch=(ValueError, ArithmeticError), gc_after_trial=False)
    except KeyboardInterrupt:
        # the command interrupts a worker process's running trial once it asked the search to
        # stop (that trial could not be used any more): end quietly. In this process (no
        # threads given) only the user sends SIGINT: that Ctrl-C goes on up.
        if threads is None or stop_path is None or not os.path.exists(stop_path):
            raise
    finally:
        with _no_interrupt(threads is not None):  # a late stop must not break the clean-up
            client.close()
            if restore is not None:  # Ray reuses its worker processes
                restore()
        if limits is not None:
            limits.restore_original_limits()
    return len(study.trials) - before


def _quiet_when_stopped(stop_path: str) -> Callable[[], None]:
    """Make SIGINT in this worker process end its trial without Optuna's failure traceback
    when the command asked the search to stop (a real Ctrl-C still shows what it stopped);
    return what puts the previous handler and Optuna's log level back."""
    import optuna

    verbosity = optuna.logging.get_verbosity()

    def interrupt(signum: int, frame: Any) -> None:
        if os.path.exists(stop_path):
            optuna.logging.set_verbosity(optuna.logging.CRITICAL)
        raise KeyboardInterrupt

    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: keep the default
        previous = signal.signal(signal.SIGINT, interrupt)

    def restore() -> None:
        optuna.logging.set_verbosity(verbosity)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    return restore


@contextlib.contextmanager
def _no_interrupt(active: bool) -> Iterator[None]:
    """Ignore SIGINT inside the block (in a worker process's main thread), then restore it."""
    previous = None
    if active:
        with contextlib.suppress(ValueError):  # not the main thread: nothing to do
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


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


def run_in_process(job_path: Path, storage_path: Path, trials: int | None,
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
    while not done.wait(search.POLL_S):
        if on_progress is not None:
            # A progress display must never stop a search.
            with contextlib.suppress(Exception):
                on_progress(search.summarize(storage_path, metric))


def run_on_processes(job_path: Path, storage_path: Path, trials: int | None,
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
    interrupted = False
    try:
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(search.summarize(storage_path, metric))
            if not interrupted and stop_path is not None and stop_path.exists():
                # the command keeps its budget: running trials end now, not at their next
                # fold (one fold of a large dataset's holdout is the whole trial)
                _interrupt(processes)
                interrupted = True
            for process in processes:
                process.join(timeout=search.POLL_S / workers)
        failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
        if failed and search.summarize(storage_path, metric).best_candidate is None:
            from loopml.errors import LoopmlError

            raise LoopmlError(f"search workers failed (exit codes {failed}) before finishing "
                              "a trial; run with train.n_jobs: 1 to see the error")
    except KeyboardInterrupt:
        # Let the workers stop as after Ctrl-C themselves (their trial runs end KILLED, their
        # metrics flushed); only those that do not stop in time are terminated.
        _interrupt(processes)
        for process in processes:
            process.join(timeout=10)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        raise


def _interrupt(processes: list[Any]) -> None:
    """Send SIGINT to the live workers: their running trial ends as after Ctrl-C."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)


def run_on_ray(job_path: Path, storage_path: Path, trials: int | None, deadline: float | None,
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
    cancelled = False
    try:
        while pending:
            done, pending = ray.wait(pending, timeout=search.POLL_S)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    continue  # asked to stop below
                except ray.exceptions.RayError as exc:
                    from loopml.errors import LoopmlError

                    raise LoopmlError(f"a Ray search worker failed: "
                                      f"{str(exc).strip().splitlines()[-1]}") from exc
            if on_progress is not None:
                on_progress(search.summarize(storage_path, metric))
            if not cancelled and stop_path is not None and stop_path.exists():
                for ref in pending:  # a KeyboardInterrupt in the task: its trial ends now
                    ray.cancel(ref)
                cancelled = True
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
