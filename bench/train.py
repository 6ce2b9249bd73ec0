"""Train benchmark: `loopml train` against FLAML with the same time budget, on bundled datasets.

Measures, for each dataset (real tabular data that ships inside scikit-learn or statsmodels,
plus loopml's own generated credit data; nothing is downloaded):

1. loopml: the dataset is written to a CSV, added to a fresh workspace, then trained with
   ``train_project`` and ``train: {time_budget_s: BUDGET, trials: null, n_jobs: -1, seed: 0,
   metric: M}`` (the default candidates). The test score is the model card's
   ``evaluation.metrics[M]``, on the test split loopml made and recorded.
2. FLAML: ``AutoML().fit(X, y, time_budget=BUDGET, metric=M, n_jobs=-1, seed=0)`` on exactly
   loopml's train + validation rows and loopml's feature columns (read back with
   ``Catalog.load_split`` and the split spec in the card), scored with scikit-learn on exactly
   loopml's test rows. The test rows' fingerprint must match loopml's, or the run fails.

Both sides optimise the same metric: binary → ROC-AUC, multiclass → log loss, regression →
RMSE (FLAML ``roc_auc`` / ``log_loss`` / ``rmse``). The gap is loopml's shortfall relative to
FLAML's test score, sign-adjusted so that a positive gap always means loopml is worse:
``(flaml - loopml) / |flaml|`` for higher-is-better metrics, ``(loopml - flaml) / |flaml|``
for lower-is-better ones. "Within 1 %" means gap ≤ 0.01 (loopml better counts as within).

Then the parallel speed-up of loopml's search: one dataset, a fixed trial count
(``trials: 30, time_budget_s: null``, candidates linear, hist_gradient_boosting, lightgbm,
xgboost, seed 0), once with ``n_jobs: 1`` and once with ``n_jobs: 2``; speed-up = search
seconds at 1 worker / search seconds at 2. Since the two runs sample different trials (TPE
sees other results in a different order), the script also reports the work each did (sum of
trial seconds), the parallel efficiency (work / (workers × search seconds)), the per-candidate
mean trial time (contention shows as longer trials), the cost of the parent's progress
polling (``summarize`` is wrapped with a timer in the child) and of starting one spawned
worker (a probe process that imports what a worker imports).

Every side runs in its own fresh Python process; times exclude interpreter start and imports.

Run with ``make bench-train`` or ``.venv-bench/bin/python bench/train.py [--budget 60]``.
Results are printed as tables and written to ``bench/out/train.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import machine, versions, write_report  # bench/common.py, beside this script

OUT_DIR = Path(__file__).resolve().parent / "out"
OUT_FILE = OUT_DIR / "train.json"
PROJECT = "bench"
SEED = 0
DIRECTION = {"roc_auc": 1, "log_loss": -1, "accuracy": 1, "rmse": -1, "r2": 1, "mae": -1}
FLAML_TASK = {"binary": "classification", "multiclass": "classification",
              "regression": "regression"}
SPEEDUP_CANDIDATES = ["linear", "hist_gradient_boosting", "lightgbm", "xgboost"]


# -- datasets --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchData:
    name: str
    task: str
    metric: str
    target: str
    origin: str
    sensitive: list[str] = field(default_factory=list)
    pii: dict[str, str] = field(default_factory=dict)


DATASETS = {
    "breast_cancer": BenchData("breast_cancer", "binary", "roc_auc", "target",
                               "sklearn.datasets.load_breast_cancer (569 × 30)"),
    "digits": BenchData("digits", "multiclass", "log_loss", "target",
                        "sklearn.datasets.load_digits (1,797 × 64, 10 classes)"),
    "diabetes": BenchData("diabetes", "regression", "rmse", "target",
                          "sklearn.datasets.load_diabetes, unscaled (442 × 10)"),
    "fair": BenchData("fair", "binary", "roc_auc", "had_affair",
                      "statsmodels.datasets.fair (6,366 × 8), target affairs > 0"),
    "credit": BenchData("credit", "binary", "roc_auc", "default",
                        "loopml.demo_data.make_credit(5000, seed=7), generated; gender "
                        "sensitive, email dropped as PII", sensitive=["gender"],
                        pii={"email": "drop"}),
    # Not in the default set:
    "wine": BenchData("wine", "multiclass", "log_loss", "target",
                      "sklearn.datasets.load_wine (178 × 13, 3 classes)"),
    "randhie": BenchData("randhie", "regression", "rmse", "mdvis",
                         "statsmodels.datasets.randhie (20,190 × 9), outpatient visits"),
}
DEFAULT_DATASETS = ["breast_cancer", "digits", "diabetes", "fair", "credit"]


def load_frame(name: str):
    """Return dataset ``name`` as a DataFrame with its target column, from installed packages."""
    if name in ("breast_cancer", "digits", "diabetes", "wine"):
        from sklearn import datasets

        if name == "diabetes":
            frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
        else:
            frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        frame.columns = [str(c).replace(" ", "_").replace("/", "_") for c in frame.columns]
        return frame
    if name == "fair":
        import statsmodels.api as sm

        frame = sm.datasets.fair.load_pandas().data
        frame["had_affair"] = (frame.pop("affairs") > 0).astype(int)
        return frame
    if name == "randhie":
        import statsmodels.api as sm

        return sm.datasets.randhie.load_pandas().data
    if name == "credit":
        from loopml.demo_data import make_credit

        return make_credit(5000, seed=7)
    raise SystemExit(f"bench: unknown dataset {name!r}")


# -- scoring (the same function for both sides) ----------------------------------------------

def metrics_of(task: str, y, proba=None, predicted=None) -> dict[str, float]:
    """Return test metrics with scikit-learn: the primary one and a few for context."""
    import numpy as np
    from sklearn import metrics as m

    if task == "regression":
        return {"rmse": float(np.sqrt(m.mean_squared_error(y, predicted))),
                "mae": float(m.mean_absolute_error(y, predicted)),
                "r2": float(m.r2_score(y, predicted))}
    labels = list(range(proba.shape[1]))
    out = {"log_loss": float(m.log_loss(y, proba, labels=labels)),
           "accuracy": float(m.accuracy_score(y, proba.argmax(axis=1)))}
    if task == "binary":
        out["roc_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
    return out


def gap(metric: str, loopml: float, flaml: float) -> float:
    """Return loopml's shortfall relative to FLAML (positive: loopml is worse)."""
    return DIRECTION[metric] * (flaml - loopml) / abs(flaml)


def fingerprint(frame) -> str:
    import pandas as pd

    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()
                          ).hexdigest()[:16]


def encode_target(task: str, series, classes: list[Any]):
    import numpy as np

    if task == "regression":
        return series.to_numpy(dtype=float)
    lookup = {value: index for index, value in enumerate(classes)}
    return np.array([lookup[v] for v in series.tolist()], dtype=int)


# -- children --------------------------------------------------------------------------------

def _config(data: BenchData, csv: Path, train: dict[str, Any]):
    from loopml.config import ProjectConfig

    return ProjectConfig.model_validate({
        "project": {"name": PROJECT},
        "data": {"dataset": data.name, "source": str(csv), "target": data.target,
                 "task": data.task, "sensitive": data.sensitive, "pii": data.pii},
        "train": train,
    })


def _split_parts(workspace: Path, data: BenchData, split: dict[str, Any]):
    """Return loopml's {train, validation, test} frames, from the split recorded in the card."""
    from loopml.data import Catalog, SplitSpec
    from loopml.workspace import Workspace

    spec = SplitSpec(method=split["method"], fractions=tuple(split["fractions"]),
                     seed=split["seed"], column=split["column"])
    catalog = Catalog.from_workspace(Workspace.from_env(workspace, env={}))
    return catalog.load_split(data.name, spec, project=PROJECT)


def _search_summary(card: dict[str, Any]) -> dict[str, Any]:
    search = card["search"]
    per: dict[str, dict[str, float]] = {}
    for trial in search["trials"]:
        entry = per.setdefault(trial["model"] or "?", {"trials": 0, "complete": 0,
                                                       "seconds": 0.0})
        entry["trials"] += 1
        entry["complete"] += trial["state"] == "COMPLETE"
        entry["seconds"] += trial["seconds"] or 0.0
    for entry in per.values():
        entry["mean_trial_s"] = entry["seconds"] / entry["trials"]
    work = sum(t["seconds"] or 0.0 for t in search["trials"])
    return {"seconds": search["seconds"], "workers": search["workers"],
            "validation": search["validation"], "total": search["total"],
            "complete": search["complete"], "pruned": search["pruned"],
            "failed": sum(1 for t in search["trials"] if t["state"] == "FAIL"),
            "best_cv_score": search["best_score"], "trial_seconds_sum": work,
            "efficiency": work / (search["workers"] * search["seconds"]),
            "by_candidate": per,
            "trials": [{k: t[k] for k in ("number", "model", "state", "value", "seconds")}
                       for t in search["trials"]]}


def child_loopml(data: BenchData, csv: Path, workspace: Path, budget: float, result: Path
                 ) -> None:
    started = time.perf_counter()
    from loopml.data import Catalog, resolve_source
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    import_s = time.perf_counter() - started
    ws = Workspace.from_env(workspace, env={})
    config = _config(data, csv, {"time_budget_s": budget, "trials": None, "n_jobs": -1,
                                 "seed": SEED, "metric": data.metric})
    start = time.perf_counter()
    catalog = Catalog.from_workspace(ws)  # the ingest `loopml train` does first, timed apart
    catalog.add(resolve_source(csv), name=data.name, project=PROJECT, target=data.target,
                pii=data.pii)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    outcome = train_project(config, workspace=ws)
    train_s = time.perf_counter() - start
    card = outcome.card

    parts = _split_parts(workspace, data, card["data"]["split"])
    test = parts["test"]
    classes = outcome.model.classes
    y = encode_target(data.task, test[data.target], classes)
    if data.task == "regression":
        own = metrics_of(data.task, y, predicted=outcome.model.pipeline.predict(
            test[outcome.model.input_columns]))
    else:
        own = metrics_of(data.task, y, proba=outcome.model.predict_proba(test))
    card_score = card["evaluation"]["metrics"][data.metric]
    if abs(own[data.metric] - card_score) > 1e-9 * max(1.0, abs(card_score)):
        raise SystemExit(f"bench: card says {data.metric} {card_score}, sklearn on the same "
                         f"test rows says {own[data.metric]}")
    result.write_text(json.dumps({
        "import_s": import_s, "ingest_s": ingest_s, "train_s": train_s,
        "wall_s": ingest_s + train_s,
        "test_score": card_score, "test_metrics": own,
        "card_metrics": card["evaluation"]["metrics"],
        "best": {"candidate": card["model"]["candidate"], "params": card["model"]["params"],
                 "threshold": card["model"]["threshold"]},
        "search": _search_summary(card),
        "split": card["data"]["split"], "rows": card["data"]["rows"],
        "features": card["features"], "classes": [repr(c) for c in classes],
        "test_fingerprint": fingerprint(test), "task": card["task"], "metric": card["metric"],
    }, indent=2, default=str))


def child_flaml(data: BenchData, workspace: Path, budget: float, loopml_result: Path,
                result: Path) -> None:
    started = time.perf_counter()
    import pandas as pd
    from flaml import AutoML

    import_s = time.perf_counter() - started
    mine = json.loads(loopml_result.read_text())
    parts = _split_parts(workspace, data, mine["split"])
    if fingerprint(parts["test"]) != mine["test_fingerprint"]:
        raise SystemExit("bench: FLAML's test rows differ from loopml's")
    features = mine["features"]
    columns = [*features["numeric"], *features["categorical"], *features["datetime"]]
    everything = pd.concat([parts["train"], parts["validation"], parts["test"]],
                           ignore_index=True)
    classes = sorted(everything[data.target].unique().tolist()) \
        if data.task != "regression" else []
    if data.task != "regression" and [repr(c) for c in classes] != mine["classes"]:
        raise SystemExit(f"bench: classes {classes} differ from loopml's {mine['classes']}")

    def inputs(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[columns].copy()
        for column in features["categorical"]:  # FLAML takes pandas categories
            values = sorted(everything[column].dropna().astype(str).unique())
            out[column] = pd.Categorical(out[column].astype("object").where(
                out[column].notna(), None).map(lambda v: None if v is None else str(v)),
                categories=values)
        for column in features["datetime"]:
            out[column] = pd.to_datetime(out[column], errors="coerce")
        return out

    fit_rows = pd.concat([parts["train"], parts["validation"]], ignore_index=True)
    X, y = inputs(fit_rows), encode_target(data.task, fit_rows[data.target], classes)
    X_test = inputs(parts["test"])
    y_test = encode_target(data.task, parts["test"][data.target], classes)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(X_train=X, y_train=y, task=FLAML_TASK[data.task], metric=data.metric,
               time_budget=budget, n_jobs=-1, seed=SEED, verbose=0, mlflow_logging=False)
    fit_s = time.perf_counter() - start
    if data.task == "regression":
        own = metrics_of(data.task, y_test, predicted=automl.predict(X_test))
    else:
        if list(automl.classes_) != list(range(len(classes))):
            raise SystemExit(f"bench: FLAML's classes {automl.classes_} are not 0..k-1")
        own = metrics_of(data.task, y_test, proba=automl.predict_proba(X_test))
    history = getattr(automl, "config_history", {}) or {}
    result.write_text(json.dumps({
        "import_s": import_s, "wall_s": fit_s, "test_score": own[data.metric],
        "test_metrics": own,
        "best": {"estimator": automl.best_estimator, "config": automl.best_config,
                 "validation_loss": automl.best_loss},
        "trials": len(history),
        "eval_method": getattr(automl._state, "eval_method", None),
        "time_to_find_best_s": automl.time_to_find_best_model,
        "estimators": sorted({v[0] for v in history.values()}) if history else [],
        "fit_rows": len(X), "test_rows": len(X_test),
    }, indent=2, default=str))


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
    config = _config(data, csv, {"trials": trials, "time_budget_s": None, "n_jobs": n_jobs,
                                 "seed": SEED, "metric": data.metric,
                                 "candidates": SPEEDUP_CANDIDATES})
    start = time.perf_counter()
    outcome = train_project(config, workspace=ws)
    train_s = time.perf_counter() - start
    result.write_text(json.dumps({
        "n_jobs": n_jobs, "train_s": train_s, "search": _search_summary(outcome.card),
        "test_score": outcome.card["evaluation"]["metrics"][data.metric],
        "best_candidate": outcome.card["model"]["candidate"], "progress_polls": polls,
        "worker_start_s": start_s,
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                        "OPENBLAS_NUM_THREADS")},
    }, indent=2, default=str))


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        result = Path(tmp) / "result.json"
        argv = [sys.executable, __file__, "--child", *args, "--result", str(result)]
        start = time.perf_counter()
        proc = subprocess.run(argv, env={**os.environ, **(env or {})})
        process_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"bench: the {args[0]} child failed (exit {proc.returncode})")
        out = json.loads(result.read_text())
    out["process_s"] = process_s
    return out


# -- report ----------------------------------------------------------------------------------

def _fmt(metric: str, value: float) -> str:
    return f"{value:.4f}" if metric != "rmse" else f"{value:.2f}"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    if report["quality"]:
        table = Table(title=f"loopml train vs FLAML, {report['args']['budget']:g} s budget each "
                            "(test split, same rows)")
        for column, justify in (("dataset", "left"), ("task", "left"), ("rows tr+va / test",
                                "right"), ("metric", "left"), ("loopml", "right"),
                                ("FLAML", "right"), ("gap", "right"), ("≤ 1 %", "center"),
                                ("loopml best (trials)", "left"), ("FLAML best (trials)", "left"),
                                ("loopml s: search / total", "right"), ("FLAML s", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in report["quality"]:
            lo, fl, metric = row["loopml"], row["flaml"], row["metric"]
            search = lo["search"]
            table.add_row(
                row["dataset"], row["task"],
                f"{lo['rows']['train'] + lo['rows']['validation']:,} / {lo['rows']['test']:,}",
                metric + (" ↓" if DIRECTION[metric] < 0 else " ↑"),
                _fmt(metric, row["loopml_score"]), _fmt(metric, row["flaml_score"]),
                f"{row['gap']:+.2%}", "yes" if row["within_1pct"] else "[red]no[/]",
                f"{lo['best']['candidate']} ({search['complete']}/{search['total']})",
                f"{fl['best']['estimator']} ({fl['trials']})",
                f"{search['seconds']:.0f} / {lo['wall_s']:.0f}", f"{fl['wall_s']:.0f}")
        console.print(table)
        extra = Table(title="Other test metrics (same predictions)")
        for column in ("dataset", "loopml", "FLAML"):
            extra.add_column(column)
        for row in report["quality"]:
            extra.add_row(row["dataset"], ", ".join(
                f"{k} {v:.4f}" for k, v in row["loopml"]["test_metrics"].items()),
                ", ".join(f"{k} {v:.4f}" for k, v in row["flaml"]["test_metrics"].items()))
        console.print(extra)
        met = sum(r["within_1pct"] for r in report["quality"])
        console.print(f"within 1 % of FLAML: {met} of {len(report['quality'])} datasets "
                      "(gap = loopml's shortfall relative to FLAML's score; negative = "
                      "loopml better)")
    speed = report.get("speedup")
    if speed:
        table = Table(title=f"Search speed-up on {speed['dataset']}: {speed['trials']} trials, "
                            f"candidates {', '.join(SPEEDUP_CANDIDATES)}")
        for column in ("n_jobs", "search s", "trials (complete/pruned)", "work (Σ trial s)",
                       "efficiency", "mean trial s by candidate", "progress polls",
                       "worker start s"):
            table.add_column(column, justify="right")
        for run in speed["runs"]:
            s = run["search"]
            table.add_row(
                str(run["n_jobs"]), f"{s['seconds']:.1f}",
                f"{s['total']} ({s['complete']}/{s['pruned']})", f"{s['trial_seconds_sum']:.1f}",
                f"{s['efficiency']:.0%}",
                ", ".join(f"{k.replace('hist_gradient_boosting', 'hgb')} "
                          f"{v['mean_trial_s']:.2f}×{v['trials']}"
                          for k, v in sorted(s["by_candidate"].items())),
                f"{run['progress_polls']['calls']} / {run['progress_polls']['seconds']:.1f} s",
                "—" if run["worker_start_s"] is None else f"{run['worker_start_s']:.1f}")
        console.print(table)
        one, two = (r["search"] for r in speed["runs"])
        console.print(f"speed-up 1 → 2 workers: {speed['speedup']:.2f}× (target ≥ 1.8×: "
                      f"{'met' if speed['met'] else 'MISSED'}); the trials' summed time went "
                      f"from {one['trial_seconds_sum']:.1f} s to {two['trial_seconds_sum']:.1f} s "
                      f"({speed['trial_work_ratio']:.2f}×) with the workers "
                      f"{two['efficiency']:.0%} busy"
                      + (f"; thread variables {speed['threads_env']}" if speed["threads_env"]
                         else ""))


def _speedup(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="time budget per side per dataset in seconds (default 60)")
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS,
                        choices=sorted(DATASETS), metavar="NAME",
                        help=f"datasets (default: {' '.join(DEFAULT_DATASETS)}; also "
                             f"{' '.join(sorted(set(DATASETS) - set(DEFAULT_DATASETS)))})")
    parser.add_argument("--skip-speedup", action="store_true",
                        help="skip the 1-vs-2-worker search speed-up measurement")
    parser.add_argument("--skip-quality", action="store_true",
                        help="skip the loopml-vs-FLAML comparison (speed-up only)")
    parser.add_argument("--speedup-dataset", default="credit", choices=sorted(DATASETS))
    parser.add_argument("--speedup-trials", type=int, default=30)
    parser.add_argument("--speedup-threads", type=int, default=0,
                        help="diagnostic: set OMP_NUM_THREADS/OPENBLAS_NUM_THREADS for the "
                             "speed-up runs (default: unset, as users run it)")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="where to write the JSON")
    parser.add_argument("--child", choices=["loopml", "flaml", "speedup"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--loopml-result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n-jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        data = DATASETS[args.dataset]
        if args.child == "loopml":
            child_loopml(data, args.csv, args.workspace, args.budget, args.result)
        elif args.child == "flaml":
            child_flaml(data, args.workspace, args.budget, args.loopml_result, args.result)
        else:
            child_speedup(data, args.csv, args.workspace, args.n_jobs, args.trials, args.result)
        return 0
    try:
        import flaml  # noqa: F401
        import statsmodels  # noqa: F401
    except ImportError as exc:
        parser.exit(2, f"bench: {exc.name} is not installed here; run `make bench-train` or "
                       "pip install -e '.[bench]'\n")

    where = machine()
    started = time.perf_counter()
    quality = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        folder = Path(tmp)
        for name in [] if args.skip_quality else args.datasets:
            data = DATASETS[name]
            frame = load_frame(name)
            csv = folder / f"{name}.csv"
            frame.to_csv(csv, index=False)
            ws = folder / f"ws-{name}"
            print(f"{name}: {frame.shape[0]:,} rows × {frame.shape[1] - 1} columns, "
                  f"{data.task}, {data.metric}; loopml …", file=sys.stderr, flush=True)
            lo = run_child(["loopml", "--dataset", name, "--csv", str(csv), "--workspace",
                            str(ws), "--budget", str(args.budget)])
            mine = folder / f"loopml-{name}.json"
            mine.write_text(json.dumps(lo, default=str))
            print(f"  {data.metric} {lo['test_score']:.4f} in {lo['wall_s']:.0f} s; FLAML …",
                  file=sys.stderr, flush=True)
            fl = run_child(["flaml", "--dataset", name, "--workspace", str(ws), "--budget",
                            str(args.budget), "--loopml-result", str(mine)])
            print(f"  {data.metric} {fl['test_score']:.4f} in {fl['wall_s']:.0f} s",
                  file=sys.stderr, flush=True)
            g = gap(data.metric, lo["test_score"], fl["test_score"])
            quality.append({"dataset": name, "origin": data.origin, "task": data.task,
                            "metric": data.metric, "loopml_score": lo["test_score"],
                            "flaml_score": fl["test_score"], "gap": g,
                            "within_1pct": g <= 0.01, "loopml": lo, "flaml": fl})
        speed = None if args.skip_speedup else _speedup(args, folder)

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": where,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "versions": versions("loopml", "flaml", "lightgbm", "xgboost-cpu", "xgboost", "optuna",
                    "scikit-learn", "statsmodels", "pandas", "numpy"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                 if k not in ("child", "dataset", "csv", "workspace", "loopml_result",
                              "n_jobs", "trials", "result")},
        "gap_definition": "sign-adjusted relative shortfall of loopml vs FLAML: "
                          "(flaml - loopml)/|flaml| for higher-is-better metrics, "
                          "(loopml - flaml)/|flaml| for lower-is-better; within 1 % iff ≤ 0.01",
        "quality": quality,
        "quality_target_met": all(r["within_1pct"] for r in quality) if quality else None,
        "speedup": speed,
        "wall_s": time.perf_counter() - started,
    }
    print_report(report)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
