"""The train benchmark's second part: loopml's search speed-up from 1 to 2 workers.

One dataset, a fixed trial count (``trials: 30, time_budget_s: null``, the candidates below,
seed 0), once with ``n_jobs: 1`` and once with ``n_jobs: 2``; speed-up = search seconds at 1
worker / search seconds at 2, with the work each did, the parent's progress-poll cost and a
spawned worker's start time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train_data import DATASETS, BenchData, load_frame
from train_loopml import PROJECT, SEED, config_for, search_summary

SPEEDUP_CANDIDATES = ["linear", "hist_gradient_boosting", "lightgbm", "xgboost"]


def _probe_worker_start(queue) -> None:
    """Import what a search worker imports before its first trial (spawned like one)."""
    import joblib  # noqa: F401
    import lightgbm  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import xgboost  # noqa: F401

    import loopml.tracking  # noqa: F401
    import loopml.train.search  # noqa: F401
    import loopml.train.trainers.lgbm  # noqa: F401
    import loopml.train.trainers.xgb  # noqa: F401

    queue.put(time.time())


def worker_start_s() -> float:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    started = time.time()
    process = context.Process(target=_probe_worker_start, args=(queue,))
    process.start()
    ready = queue.get(timeout=120)
    process.join()
    return ready - started


def child_speedup(data: BenchData, csv: Path, workspace: Path, n_jobs: int, trials: int,
                  result: Path) -> None:
    from loopml.data import Catalog, resolve_source
    from loopml.train import search
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    polls = {"calls": 0, "seconds": 0.0}
    original = search.summarize

    def timed_summarize(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            polls["calls"] += 1
            polls["seconds"] += time.perf_counter() - start

    search.summarize = timed_summarize  # the progress poll, in this (the parent) process
    start_s = worker_start_s() if n_jobs > 1 else None
    ws = Workspace.from_env(workspace, env={})
    catalog = Catalog.from_workspace(ws)
    catalog.add(resolve_source(csv), name=data.name, project=PROJECT, target=data.target,
                pii=data.pii)
    config = config_for(data, csv, {"trials": trials, "time_budget_s": None, "n_jobs": n_jobs,
                                 "seed": SEED, "metric": data.metric,
                                 "candidates": SPEEDUP_CANDIDATES})
    start = time.perf_counter()
    outcome = train_project(config, workspace=ws)
    train_s = time.perf_counter() - start
    result.write_text(json.dumps({
        "n_jobs": n_jobs, "train_s": train_s, "search": search_summary(outcome.card),
        "test_score": outcome.card["evaluation"]["metrics"][data.metric],
        "best_candidate": outcome.card["model"]["candidate"], "progress_polls": polls,
        "worker_start_s": start_s,
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                        "OPENBLAS_NUM_THREADS")},
    }, indent=2, default=str))


def run_speedup(args: argparse.Namespace, folder: Path, *, run_child: Callable[..., dict[str, Any]]
                ) -> dict[str, Any]:
    """Return the 1-vs-2-worker speed-up of loopml's search, each side run by ``run_child``."""
    data = DATASETS[args.speedup_dataset]
    csv = folder / f"{data.name}.csv"
    if not csv.exists():
        load_frame(data.name).to_csv(csv, index=False)
    env = {}
    if args.speedup_threads:
        env = {"OMP_NUM_THREADS": str(args.speedup_threads),
               "OPENBLAS_NUM_THREADS": str(args.speedup_threads)}
    runs = []
    for n_jobs in (1, 2):
        print(f"speed-up: {data.name}, {args.speedup_trials} trials, n_jobs {n_jobs} …",
              file=sys.stderr, flush=True)
        ws = folder / f"speedup-{n_jobs}"
        runs.append(run_child(["speedup", "--dataset", data.name, "--csv", str(csv),
                               "--workspace", str(ws), "--n-jobs", str(n_jobs),
                               "--trials", str(args.speedup_trials)], env=env))
        print(f"  search {runs[-1]['search']['seconds']:.1f} s", file=sys.stderr, flush=True)
    one, two = runs
    speedup = one["search"]["seconds"] / two["search"]["seconds"]
    return {"dataset": data.name, "trials": args.speedup_trials, "runs": runs,
            "threads_env": env or None, "speedup": speedup,
            # > 1: the 2-worker run's trials took longer in all (contention, or other trials)
            "trial_work_ratio": two["search"]["trial_seconds_sum"]
            / one["search"]["trial_seconds_sum"],
            "target": 1.8, "met": speedup >= 1.8}
