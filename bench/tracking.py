"""Tracking benchmark: loopml against MLflow, both on SQLite on this machine, side by side.

Measures, in one run:

1. metric points per second through the per-call API (``run.log_metric`` in a loop),
   timed from the first call until the points are durable (``run.flush()`` returned);
2. points per second through each tool's batch API (loopml ``run.log_metrics`` with ten
   keys a step, and ``store.metrics.write_batch`` as the raw store speed; MLflow
   ``MlflowClient.log_batch`` with 1,000 metrics a call, its limit);
3. start time: ``import loopml`` / ``import mlflow``, and ``loopml --help`` / ``mlflow --help``
   (median of several fresh processes), plus a tiny end-to-end script (import, new store,
   one run, one metric).

Every loopml figure is checked against the store: the points are counted back after the
timing and the run fails if any is missing. MLflow's are counted the same way, in its
``metrics`` table. Each measurement uses a fresh temporary folder.

Run with ``make bench`` or ``.venv-bench/bin/python bench/tracking.py`` (MLflow lives in its own
virtual environment, ``.venv-bench``, so it never changes the pins of ``.venv``). Results are
printed as a table and written to ``bench/out/tracking.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from common import machine, versions, write_report  # bench/common.py, beside this script

OUT_FILE = Path(__file__).resolve().parent / "out" / "tracking.json"
HELP_TARGET_S = 0.3
MLFLOW_BATCH_LIMIT = 1000
KEYS_PER_STEP = 10
RAW_CHUNK = 20_000  # rows per write_batch call (the metric buffer's default batch is 50,000)


@dataclass
class Row:
    """One line of the results table; ``speedup`` > 1 means loopml is better."""

    measurement: str
    unit: str
    loopml: float | None
    mlflow: float | None
    higher_is_better: bool
    n_loopml: int | None = None
    n_mlflow: int | None = None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        if not self.loopml or not self.mlflow:
            return None
        return self.loopml / self.mlflow if self.higher_is_better else self.mlflow / self.loopml


class CountMismatch(RuntimeError):
    """The store holds a different number of points than were logged."""


def _check_count(tool: str, what: str, expected: int, stored: int) -> None:
    if stored != expected:
        raise CountMismatch(f"{tool} {what}: logged {expected} points, the store holds {stored}")


# -- loopml ----------------------------------------------------------------------------------

@contextmanager
def _loopml_client(tag: str) -> Iterator[object]:
    """Yield a TrackingClient on a fresh SQLite workspace, closed and removed afterwards."""
    from loopml.store.engine import dispose_engine
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix=f"bench-loopml-{tag}-") as tmp:
        workspace = Workspace.from_env(tmp, env={})
        client = TrackingClient.from_workspace(workspace)
        try:
            yield client
        finally:
            client.close()
            dispose_engine(workspace.store_uri)


def loopml_per_call(points: int) -> float:
    """Return points/s of ``run.log_metric`` in a loop, flush included."""
    with _loopml_client("per-call") as client:
        with client.start_run("per-call", project="bench") as run:
            start = time.perf_counter()
            for i in range(points):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
            run.flush()
            elapsed = time.perf_counter() - start
        _check_count("loopml", "log_metric", points, client.store.metrics.count(run.id))
    return points / elapsed


def loopml_log_metrics(points: int) -> float:
    """Return points/s of ``run.log_metrics`` with KEYS_PER_STEP keys a step, flush included."""
    keys = [f"m{k}" for k in range(KEYS_PER_STEP)]
    steps = points // KEYS_PER_STEP
    with _loopml_client("log-metrics") as client:
        with client.start_run("log-metrics", project="bench") as run:
            start = time.perf_counter()
            for step in range(steps):
                value = 1.0 / (step + 1)
                run.log_metrics({key: value for key in keys}, step=step)
            run.flush()
            elapsed = time.perf_counter() - start
        _check_count("loopml", "log_metrics", steps * KEYS_PER_STEP,
                     client.store.metrics.count(run.id))
    return steps * KEYS_PER_STEP / elapsed


def loopml_write_batch(points: int) -> float:
    """Return points/s of ``store.metrics.write_batch`` with RAW_CHUNK rows a call."""
    with _loopml_client("write-batch") as client:
        with client.start_run("write-batch", project="bench") as run:
            now = time.time_ns() // 1_000_000
            rows = [(run.id, "loss", i, 1.0 / (i + 1), now) for i in range(points)]
            write_batch = client.store.metrics.write_batch
            start = time.perf_counter()
            for offset in range(0, points, RAW_CHUNK):
                write_batch(rows[offset:offset + RAW_CHUNK])
            elapsed = time.perf_counter() - start
        _check_count("loopml", "write_batch", points, client.store.metrics.count(run.id))
    return points / elapsed


# -- MLflow ----------------------------------------------------------------------------------

def _quiet_mlflow() -> None:
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


@contextmanager
def _mlflow_experiment(tag: str) -> Iterator[tuple[object, str, Path]]:
    """Yield (MlflowClient, experiment id, db path) on a fresh SQLite store."""
    import mlflow

    _quiet_mlflow()
    with tempfile.TemporaryDirectory(prefix=f"bench-mlflow-{tag}-") as tmp:
        db = Path(tmp) / "mlflow.db"
        uri = f"sqlite:///{db}"
        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment(
            "bench", artifact_location=(Path(tmp) / "artifacts").as_uri()
        )
        yield client, experiment_id, db


def _mlflow_count(db: Path, run_id: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", (run_id,)
        ).fetchone()[0]


def mlflow_per_call(points: int, *, synchronous: bool = True) -> float:
    """Return points/s of ``mlflow.log_metric`` in a loop (fluent API, like ``run.log_metric``)."""
    import mlflow

    with _mlflow_experiment("per-call") as (_client, experiment_id, db):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            start = time.perf_counter()
            for i in range(points):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=synchronous)
            if not synchronous:
                mlflow.flush_async_logging()
            elapsed = time.perf_counter() - start
        what = "log_metric" if synchronous else "log_metric(synchronous=False)"
        _check_count("mlflow", what, points, _mlflow_count(db, run.info.run_id))
    return points / elapsed


def mlflow_log_batch(points: int) -> float:
    """Return points/s of ``MlflowClient.log_batch``, 1,000 metrics a call, KEYS_PER_STEP a step."""
    from mlflow.entities import Metric

    keys = [f"m{k}" for k in range(KEYS_PER_STEP)]
    steps = points // KEYS_PER_STEP
    steps_per_call = MLFLOW_BATCH_LIMIT // KEYS_PER_STEP
    with _mlflow_experiment("log-batch") as (client, experiment_id, db):
        run_id = client.create_run(experiment_id).info.run_id
        start = time.perf_counter()
        for first in range(0, steps, steps_per_call):
            now = int(time.time() * 1000)
            batch = [
                Metric(key, 1.0 / (step + 1), now, step)
                for step in range(first, min(first + steps_per_call, steps))
                for key in keys
            ]
            client.log_batch(run_id, metrics=batch)
        elapsed = time.perf_counter() - start
        client.set_terminated(run_id)
        _check_count("mlflow", "log_batch", steps * KEYS_PER_STEP, _mlflow_count(db, run_id))
    return steps * KEYS_PER_STEP / elapsed


# -- start time ------------------------------------------------------------------------------

def _child_env() -> dict[str, str]:
    """Return this environment with bytecode caching on, as on a user's machine."""
    import os

    # Some sandboxes set PYTHONDONTWRITEBYTECODE, which would make every start compile
    # loopml's (editable, uncompiled) sources again; the warm-up run writes the caches.
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _median_wall(argv: list[str], *, repeat: int, cwd: str) -> float:
    """Return the median wall time of running ``argv`` ``repeat`` times (after one warm-up)."""
    times = []
    for attempt in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=_child_env())
        if attempt:  # the first run only warms the OS file cache
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _script(name: str) -> str:
    """Return the console script ``name`` of this interpreter's environment."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: console script {name!r} not found next to {sys.executable}")
    return found


_LOOPML_TINY = """\
import sys, loopml
from loopml.tracking import TrackingClient
from loopml.workspace import Workspace
client = TrackingClient.from_workspace(Workspace.from_env(sys.argv[1], env={}))
with client.start_run("tiny", project="bench") as run:
    run.log_metric("loss", 0.5, step=0)
client.close()
"""

_MLFLOW_TINY = """\
import logging, sys, mlflow
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
with mlflow.start_run():
    mlflow.log_metric("loss", 0.5, step=0)
"""


def _tiny_script(code: str, *, repeat: int) -> float:
    """Return the median wall time of a tiny tracking script, each run on a fresh store."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-tiny-") as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, tmp], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=_child_env())
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def start_rows(repeat: int, import_repeat: int, tiny_repeat: int) -> tuple[list[Row], float]:
    """Return the start-time rows and the bare interpreter's start time."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-start-") as cwd:
        bare = _median_wall([py, "-c", "pass"], repeat=repeat, cwd=cwd)

        def pair(name: str, loopml_argv: list[str], mlflow_argv: list[str], *, n: int,
                 note: str = "") -> Row:
            return Row(name, "s",
                       _median_wall(loopml_argv, repeat=n, cwd=cwd),
                       _median_wall(mlflow_argv, repeat=n, cwd=cwd),
                       higher_is_better=False, n_loopml=n, n_mlflow=n,
                       note=f"median of {n}{note}")

        rows = [
            pair("python -c 'import <tool>'", [py, "-c", "import loopml"],
                 [py, "-c", "import mlflow"], n=import_repeat, note="; loopml's is lazy"),
            pair("import the tracking client",
                 [py, "-c", "from loopml.tracking import TrackingClient"],
                 [py, "-c", "from mlflow import MlflowClient"], n=import_repeat),
            pair("<tool> --help", [_script("loopml"), "--help"], [_script("mlflow"), "--help"],
                 n=repeat, note=f"; target loopml ≤ {HELP_TARGET_S} s"),
        ]
    rows.append(Row("tiny script: import, new store, 1 run, 1 point", "s",
                    _tiny_script(_LOOPML_TINY, repeat=tiny_repeat),
                    _tiny_script(_MLFLOW_TINY, repeat=tiny_repeat),
                    higher_is_better=False, n_loopml=tiny_repeat, n_mlflow=tiny_repeat,
                    note=f"median of {tiny_repeat}, fresh SQLite file each"))
    return rows, bare


# -- report ----------------------------------------------------------------------------------

def _relative(path: str) -> str:
    import os

    return os.path.relpath(path) if path.startswith(os.getcwd()) else path


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} pts/s" if unit == "points/s" else f"{value:.3f} s"


def print_table(rows: list[Row], bare_s: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Tracking on SQLite: loopml vs MLflow",
                  caption=f"speed-up > 1 means loopml is better; bare `python -c pass` "
                          f"takes {bare_s:.3f} s")
    for column, justify in (("measurement", "left"), ("loopml", "right"), ("mlflow", "right"),
                            ("speed-up", "right"), ("N / note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        speedup = row.speedup
        if row.unit == "points/s":
            n = (f"loopml {row.n_loopml:,}, mlflow {row.n_mlflow:,} pts"
                 if row.n_mlflow else f"{row.n_loopml:,} pts")
            note = f"{n}; {row.note}" if row.note else n
        else:
            note = row.note
        table.add_row(row.measurement, _fmt(row.loopml, row.unit), _fmt(row.mlflow, row.unit),
                      f"{speedup:,.1f}×" if speedup else "—", note)
    Console(width=max(Console().width, 132)).print(table)


def _timed(label: str, fn: Callable[[], float]) -> float:
    print(f"  {label} …", file=sys.stderr, flush=True)
    start = time.perf_counter()
    value = fn()
    print(f"    done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000,
                        help="metric points per loopml measurement (default 200,000)")
    parser.add_argument("--mlflow-points", type=int, default=2_000,
                        help="points for MLflow's per-call loop, ~100/s (default 2,000)")
    parser.add_argument("--mlflow-batch-points", type=int, default=30_000,
                        help="points for MLflow's log_batch, ~4,000/s (default 30,000)")
    parser.add_argument("--mlflow-async", action="store_true",
                        help="also time mlflow.log_metric(synchronous=False) + flush")
    parser.add_argument("--repeat", type=int, default=7,
                        help="processes per `--help` median (default 7)")
    parser.add_argument("--import-repeat", type=int, default=5,
                        help="processes per import-time median (default 5)")
    parser.add_argument("--tiny-repeat", type=int, default=3,
                        help="runs of the tiny end-to-end script (default 3)")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="where to write the JSON")
    args = parser.parse_args(argv)
    try:
        import mlflow  # noqa: F401
    except ImportError:
        parser.exit(2, "bench: MLflow is not installed here; run `make bench`, which installs "
                       "it into .venv-bench\n")

    where = machine()  # load average before the run: other work skews every figure
    print("measuring throughput:", file=sys.stderr)
    rows = [
        Row("log_metric, one call a point (flush included)", "points/s",
            _timed("loopml run.log_metric", lambda: loopml_per_call(args.points)),
            _timed("mlflow mlflow.log_metric", lambda: mlflow_per_call(args.mlflow_points)),
            higher_is_better=True, n_loopml=args.points, n_mlflow=args.mlflow_points,
            note="fluent APIs; MLflow with fewer points (it is slow)"),
    ]
    if args.mlflow_async:
        rows.append(Row(
            "log_metric vs mlflow synchronous=False (+ flush)", "points/s", rows[0].loopml,
            _timed("mlflow log_metric(synchronous=False)",
                   lambda: mlflow_per_call(args.mlflow_points, synchronous=False)),
            higher_is_better=True, n_loopml=args.points, n_mlflow=args.mlflow_points,
            note="MLflow's async logging, until flush_async_logging() returns"))
    rows += [
        Row(f"batch API: log_metrics ({KEYS_PER_STEP} keys/step) vs log_batch (1,000/call)",
            "points/s",
            _timed("loopml run.log_metrics", lambda: loopml_log_metrics(args.points)),
            _timed("mlflow MlflowClient.log_batch",
                   lambda: mlflow_log_batch(args.mlflow_batch_points)),
            higher_is_better=True, n_loopml=args.points, n_mlflow=args.mlflow_batch_points,
            note="flush included"),
        Row(f"raw store: metrics.write_batch ({RAW_CHUNK:,} rows/call)", "points/s",
            _timed("loopml store.metrics.write_batch", lambda: loopml_write_batch(args.points)),
            None, higher_is_better=True, n_loopml=args.points,
            note="no MLflow equivalent below log_batch"),
    ]
    print("measuring start time:", file=sys.stderr)
    more, bare = start_rows(args.repeat, args.import_repeat, args.tiny_repeat)
    rows += more

    print_table(rows, bare)
    help_row = next(row for row in rows if row.measurement == "<tool> --help")
    met = help_row.loopml is not None and help_row.loopml <= HELP_TARGET_S
    print(f"target `loopml --help` ≤ {HELP_TARGET_S} s: {'met' if met else 'MISSED'} "
          f"({help_row.loopml:.3f} s)")

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([_relative(sys.executable), *sys.argv]),
        "machine": where,
        "versions": versions("loopml", "mlflow", "sqlalchemy", "alembic"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "python_startup_s": bare,
        "targets": {"loopml_help_s": HELP_TARGET_S, "loopml_help_met": met},
        "results": [{**asdict(row), "speedup": row.speedup} for row in rows],
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
