"""Wide-data benchmark: ``loopml data add`` and ``loopml data validate`` of a very wide CSV.

Generates a CSV with ``--columns`` columns and ``--rows`` rows (fixed seed): mostly float
columns (some with missing values), every tenth an integer column, every twentieth a
small categorical text column, and a binary ``target``. Then runs, each in its own fresh
process on a fresh workspace,

1. ``loopml data add FILE --name wide --target target`` (ingest, profile, contract, report),
2. ``loopml data validate FILE --against wide`` (every contract check over every column),

and reports each command's wall time and peak resident memory (``ru_maxrss`` of the child
from ``os.wait4``, which covers the DuckDB threads too).

``--stages`` also runs, in one more fresh process, the stages of ``data add`` one by one
(snapshot, DuckDB profile, HTML report of the first 100 columns) with their wall times and
the peak RSS after each.

Run with ``.venv/bin/python bench/wide.py [--columns 5000 --rows 10000] [--stages]``; the CSV
is written to ``bench/out/`` (git-ignored) and reused by later runs with the same shape and
seed. Results are printed and written to ``bench/out/wide.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, versions, write_report  # bench/common.py, beside this script

OUT_DIR = Path(__file__).resolve().parent / "out"
GENERATOR_VERSION = 1
CHUNK_ROWS = 2_000
MB = 1 << 20
REPORT_COLUMNS = 100


def kind_of(index: int) -> str:
    """Return the kind of generated column ``index``: float, integer or category.

    >>> [kind_of(i) for i in (0, 1, 10, 20)]
    ['integer', 'float', 'integer', 'category']
    """
    if index % 20 == 0 and index:
        return "category"
    if index % 10 == 0:
        return "integer"
    return "float"


def generate(path: Path, *, columns: int, rows: int, seed: int = 0) -> Path:
    """Write a wide CSV to ``path`` (in row chunks, so memory stays bounded) and return it."""
    import numpy as np
    import pandas as pd

    names = [f"c{i:05d}" for i in range(columns - 1)] + ["target"]
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
            n = min(CHUNK_ROWS, rows - start)
            rng = np.random.default_rng([seed, chunk])
            data: dict[str, object] = {}
            for i, name in enumerate(names[:-1]):
                kind = kind_of(i)
                if kind == "integer":
                    data[name] = rng.integers(0, 1000, n)
                elif kind == "category":
                    data[name] = np.array(["red", "green", "blue", "grey"])[rng.integers(0, 4, n)]
                else:
                    values = rng.normal(i % 7, 1 + i % 3, n).round(4)
                    if i % 7 == 3:
                        values[rng.random(n) < 0.1] = np.nan
                    data[name] = values
            data["target"] = rng.integers(0, 2, n)
            pd.DataFrame(data).to_csv(handle, index=False, header=chunk == 0)
    tmp.replace(path)
    return path


def run_child(command: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run ``command``; return its exit code, wall seconds and peak RSS in MB."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"command": " ".join(command), "exit_code": child.returncode,
            "seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss * 1024 / MB),
            "stderr_tail": stderr[-500:]}


def stages(csv: Path) -> dict[str, object]:
    """Return wall seconds and peak RSS (MB) after each stage of an ingest, run in this process."""
    import resource

    from loopml.data import report
    from loopml.data.profile import profile_parquet
    from loopml.data.snapshot import write_snapshot
    from loopml.data.sources import resolve_source

    out: dict[str, object] = {}

    def mark(name: str, start: float) -> None:
        out[name] = {"seconds": round(time.perf_counter() - start, 2),
                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}

    with tempfile.TemporaryDirectory(prefix="loopml-wide-") as tmp:
        start = time.perf_counter()
        snap = write_snapshot(resolve_source(csv), Path(tmp, "snapshot.parquet"))
        mark("snapshot", start)
        start = time.perf_counter()
        profile = profile_parquet(snap.path, snap.schema, pii={})
        mark("profile", start)
        # The report draws a plot a column (~0.1 s each): time it on the first REPORT_COLUMNS.
        first = dict(list(profile["columns"].items())[:REPORT_COLUMNS])
        start = time.perf_counter()
        report.render("wide", {**profile, "columns": first}, meta={}, pii={})
        mark(f"report of the first {len(first)} columns", start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=5_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--child-stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_stages:
        import json

        print(json.dumps(stages(args.child_stages)))
        return

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    csv = OUT_DIR / f"wide-{args.columns}x{args.rows}-s{args.seed}-v{GENERATOR_VERSION}.csv"
    if not csv.exists():
        print(f"generating {csv} ...", flush=True)
        generate(csv, columns=args.columns, rows=args.rows, seed=args.seed)
    loopml = str(Path(sys.executable).with_name("loopml"))
    results = []
    with tempfile.TemporaryDirectory(prefix="loopml-wide-") as home:
        env = {**os.environ, "LOOPML_HOME": home}
        for command in ([loopml, "data", "add", str(csv), "--name", "wide", "--target",
                         "target"],
                        [loopml, "data", "validate", str(csv), "--against", "wide"]):
            result = run_child(command, env)
            results.append(result)
            print(f"{command[1]} {command[2]}: exit {result['exit_code']}, "
                  f"{result['seconds']} s, peak RSS {result['peak_rss_mb']} MB", flush=True)
            if result["exit_code"] != 0:
                print(result["stderr_tail"], file=sys.stderr)
    stage_times = None
    if args.stages:
        import json

        child = subprocess.run([sys.executable, __file__, "--child-stages", str(csv)],
                               capture_output=True, text=True, check=True)
        stage_times = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"stages of data add: {stage_times}")
    write_report(OUT_DIR / "wide.json", {
        "file": {"path": csv.name, "columns": args.columns, "rows": args.rows,
                 "mb": round(csv.stat().st_size / MB, 1)},
        "results": results, "stages": stage_times, "machine": machine(),
        "versions": versions("duckdb", "pyarrow", "pandas"),
    })


if __name__ == "__main__":
    main()
