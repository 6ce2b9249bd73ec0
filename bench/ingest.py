"""Data benchmark: ingest + profile of a generated CSV with loopml, against pandas, in one run.

Measures, on the same file (about 1 GB by default):

1. loopml: ``catalog.add(resolve_source(csv), name="bench")`` on a fresh workspace, then
   ``catalog.profile(version)``. That streams the CSV into a zstd Parquet snapshot while
   checking it, detecting PII and hashing its content, profiles the snapshot with DuckDB
   (counts, distinct, quantiles, histograms, top values for every column), renders the HTML
   report, copies the snapshot into the content-addressed artifact store and records the
   version in SQLite.
2. pandas: ``df = pd.read_csv(csv)`` then ``df.describe(include="all")`` (and, timed apart,
   plain ``df.describe()``). That parses the file into memory and summarises it; nothing is
   written.

Each side runs in its own fresh Python process, so its peak memory is its own: the child
reads its peak resident set (``VmHWM`` in ``/proc/self/status``) at the end, and the parent
cross-checks it with the child's ``ru_maxrss`` from ``os.wait4``. Wall times exclude the
interpreter start and imports (reported apart). The file is read once before the first
measurement so that both sides find it in the OS page cache.

The loopml child times its stages (CSV reader, checks, PII, hashing, Parquet write, DuckDB
profile per column, report, artifact copy, metadata) by wrapping those functions with timers
in the child process only; there are a few hundred timed calls in a run, so the overhead is
negligible. ``--plain`` turns the timers off; ``--cprofile`` also writes a cProfile dump.

The CSV is generated with a fixed seed (numpy), in chunks so generation itself has bounded
memory, into ``bench/out/`` (git-ignored), and reused by later runs with the same ``--gb``
and ``--seed``.

Run with ``make bench-ingest`` or ``.venv-bench/bin/python bench/ingest.py [--gb 1.0]``.
Results are printed as a table and written to ``bench/out/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import machine, versions, write_report  # bench/common.py, beside this script

OUT_DIR = Path(__file__).resolve().parent / "out"
OUT_FILE = OUT_DIR / "ingest.json"
GENERATOR_VERSION = 1  # bump when the generated data changes, so old files are not reused
CHUNK_ROWS = 250_000
MB = 1 << 20

COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "ES", "IT", "NL", "SE", "PL", "MX",
             "AU"]
COUNTRY_WEIGHTS = [0.30, 0.10, 0.09, 0.07, 0.08, 0.06, 0.05, 0.05, 0.04, 0.04, 0.03, 0.03,
                   0.03, 0.02, 0.01]
PLANS = ["free", "basic", "pro", "team", "enterprise"]
PLAN_WEIGHTS = [0.55, 0.2, 0.15, 0.07, 0.03]
DEVICES = ["web", "ios", "android"]
STATUSES = ["active", "trial", "paused", "cancelled"]
COLUMNS = ["id", "created_at", "country", "plan", "device", "status", "age", "sessions",
           "items", "tenure_days", "amount", "discount", "score", "latency_ms", "ratio",
           "temperature", "balance", "churned"]


# -- data ------------------------------------------------------------------------------------

def _chunk(seed: int, index: int, first_id: int, rows: int):
    """Return chunk ``index`` of the data as a pyarrow Table (same seed, same bytes)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, index])

    def nullable(values, share: float) -> pa.Array:
        return pa.array(values, mask=rng.random(rows) < share)

    def category(names: list[str], weights: list[float] | None, share: float) -> pa.Array:
        codes = rng.choice(len(names), size=rows, p=weights).astype(np.int32)
        array = pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=rng.random(rows) < share if share else None), pa.array(names)
        )
        return array.dictionary_decode()

    start = np.datetime64("2023-01-01T00:00:00", "s")
    seconds = rng.integers(0, 2 * 365 * 86_400, size=rows)
    return pa.table({
        "id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64)),
        "created_at": pa.array(start + seconds.astype("timedelta64[s]")),
        "country": category(COUNTRIES, COUNTRY_WEIGHTS, 0.0),
        "plan": category(PLANS, PLAN_WEIGHTS, 0.0),
        "device": category(DEVICES, None, 0.01),
        "status": category(STATUSES, [0.7, 0.1, 0.05, 0.15], 0.03),
        "age": pa.array(rng.integers(18, 90, size=rows)),
        "sessions": pa.array(rng.poisson(12, size=rows)),
        "items": nullable(rng.integers(0, 50, size=rows), 0.02),
        "tenure_days": pa.array(rng.integers(0, 3_650, size=rows)),
        "amount": nullable(np.round(rng.lognormal(3.5, 1.0, size=rows), 2), 0.05),
        "discount": nullable(np.round(rng.uniform(0, 0.5, size=rows), 3), 0.30),
        "score": pa.array(np.round(rng.normal(0, 1, size=rows), 4)),
        "latency_ms": nullable(np.round(rng.gamma(2.0, 40.0, size=rows), 1), 0.02),
        "ratio": pa.array(np.round(rng.random(rows), 6)),
        "temperature": nullable(np.round(rng.normal(21, 4, size=rows), 2), 0.01),
        "balance": pa.array(np.round(rng.normal(1_000, 5_000, size=rows), 2)),
        "churned": pa.array(rng.random(rows) < 0.12),
    })


def generate(path: Path, target_bytes: int, seed: int) -> dict[str, int]:
    """Write chunks of rows to ``path`` until it holds at least ``target_bytes``."""
    import pyarrow.csv as pacsv

    tmp = path.with_name(path.name + ".partial")
    rows = 0
    with tmp.open("wb") as handle:
        handle.write((",".join(COLUMNS) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        index = 0
        while handle.tell() < target_bytes:
            # ~111 bytes a row: small targets get small chunks, so they are not overshot
            chunk_rows = max(1_000, min(CHUNK_ROWS, (target_bytes - handle.tell()) // 120))
            table = _chunk(seed, index, rows + 1, chunk_rows)
            pacsv.write_csv(table, handle, options)
            rows += table.num_rows
            index += 1
            print(f"\r  generating {handle.tell() / MB:,.0f} / {target_bytes / MB:,.0f} MB",
                  end="", file=sys.stderr, flush=True)
        size = handle.tell()
    print(file=sys.stderr)
    tmp.replace(path)
    return {"rows": rows, "bytes": size}


def ensure_csv(gb: float, seed: int, folder: Path) -> tuple[Path, dict[str, int], bool]:
    """Return (path, {rows, bytes}, reused) of the CSV for ``gb`` and ``seed``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"ingest-{gb:g}gb-seed{seed}-v{GENERATOR_VERSION}"
    path, meta_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            return path, meta, True
    meta = generate(path, int(gb * 1e9), seed)
    meta_path.write_text(json.dumps(meta) + "\n")
    return path, meta, False


def warm_cache(path: Path) -> float:
    """Read the file once so that both sides find it in the page cache; return seconds."""
    start = time.perf_counter()
    with path.open("rb", buffering=0) as handle:
        while handle.read(16 * MB):
            pass
    return time.perf_counter() - start


# -- children --------------------------------------------------------------------------------

def _memory() -> dict[str, float]:
    """Return this process's peak and current resident set, in MB (Linux)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, value = line.split(":", 1)
            out["peak_rss_mb" if key == "VmHWM" else "rss_mb"] = int(value.split()[0]) / 1024
    return out


class _Timers:
    """Accumulated seconds and call counts by stage name, plus memory at stage ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.peak_after: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name: str, fn, *, memory: bool = False):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)
                if memory:
                    self.peak_after[name] = _memory()["peak_rss_mb"]
        return timed

    def wrap_iter(self, name: str, iterator):
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(name, time.perf_counter() - start)
                return
            self.add(name, time.perf_counter() - start)
            yield item


def _instrument(timers: _Timers, catalog) -> None:
    """Wrap loopml's ingest stages with timers (this child process only).

    Only what exists is wrapped, so the script keeps working while loopml's internals change;
    a stage that is not found is simply missing from the breakdown.
    """
    import pyarrow.parquet as pq

    import loopml.data.contract as contract_mod
    import loopml.data.pii as pii_mod
    import loopml.data.profile as profile_mod
    import loopml.data.report as report_mod
    import loopml.data.snapshot as snapshot_mod

    def wrap(owner: object, name: str, label: str, *, memory: bool = False) -> None:
        if callable(getattr(owner, name, None)):
            setattr(owner, name, timers.wrap(label, getattr(owner, name), memory=memory))

    reader = "snapshot: CSV reader (open + next batch)"
    read_batches = getattr(snapshot_mod, "read_batches", None)
    if read_batches is not None:
        def timed_read_batches(source):
            start = time.perf_counter()
            schema, batches = read_batches(source)
            timers.add(reader, time.perf_counter() - start)
            return schema, timers.wrap_iter(reader, batches)

        snapshot_mod.read_batches = timed_read_batches
    wrap(snapshot_mod, "normalize", "snapshot: normalize types")
    wrap(snapshot_mod, "check_text", "snapshot: check text (first batch)")
    wrap(snapshot_mod, "check_quoting", "snapshot: check quoting")
    wrap(pii_mod, "detect", "snapshot: PII detect (first batch)")
    wrap(pii_mod, "apply", "snapshot: PII apply")

    base_hasher = getattr(snapshot_mod, "TableHasher", None)
    if base_hasher is not None:
        class TimedHasher(base_hasher):
            def update(self, batch):
                start = time.perf_counter()
                super().update(batch)
                timers.add("snapshot: content hash", time.perf_counter() - start)

        snapshot_mod.TableHasher = TimedHasher

    class TimedWriter(pq.ParquetWriter):
        def write_batch(self, *args, **kwargs):
            start = time.perf_counter()
            super().write_batch(*args, **kwargs)
            timers.add("snapshot: Parquet write (zstd)", time.perf_counter() - start)

        def close(self):
            start = time.perf_counter()
            super().close()
            timers.add("snapshot: Parquet write (zstd)", time.perf_counter() - start)

    pq.ParquetWriter = TimedWriter
    wrap(snapshot_mod, "write_snapshot", "snapshot (total)", memory=True)

    profile_column = getattr(profile_mod, "_profile_column", None)
    if profile_column is not None:  # one call a column: time each column
        def timed_profile_column(con, field, *args, **kwargs):
            start = time.perf_counter()
            try:
                return profile_column(con, field, *args, **kwargs)
            finally:
                timers.add(f"profile: column {field.name} ({field.type})",
                           time.perf_counter() - start)

        profile_mod._profile_column = timed_profile_column
    else:  # queries over many columns at once: time each kind of query
        for name in ("_moments", "_histograms", "_categorical", "_numeric", "_datetime"):
            wrap(profile_mod, name, f"profile: {name}")
    wrap(profile_mod, "profile_parquet", "DuckDB profile (total)", memory=True)
    wrap(contract_mod, "infer", "contract inference")
    wrap(report_mod, "render", "HTML report", memory=True)
    wrap(catalog.artifacts, "put_file", "artifact store: copy snapshot", memory=True)
    wrap(catalog.artifacts, "put_bytes", "artifact store: profile + report")
    wrap(catalog.store.datasets, "add_version", "metadata: add_version")


def child_loopml(csv: Path, workspace: Path, result: Path, *, plain: bool,
                 cprofile: Path | None) -> None:
    t0 = time.perf_counter()
    from loopml.data import Catalog, resolve_source
    from loopml.workspace import Workspace

    import_s = time.perf_counter() - t0
    after_import = _memory()
    timers = _Timers()
    start = time.perf_counter()
    catalog = Catalog.from_workspace(Workspace.from_env(workspace, env={}))
    if not plain:
        timers.add("open workspace (new SQLite store, migrations)", time.perf_counter() - start)
        _instrument(timers, catalog)
    profiler = None
    if cprofile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    added = catalog.add(resolve_source(csv), name="bench")
    profile = catalog.profile(added.version)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(cprofile)
    wall = time.perf_counter() - start
    if not added.created:
        raise SystemExit("bench: the workspace already held this version; it must be fresh")
    snapshot_bytes = added.version.snapshot_size
    result.write_text(json.dumps({
        "import_s": import_s, "wall_s": wall, "rows": added.version.num_rows,
        "profile_rows": profile["num_rows"], "profile_exact": profile["exact"],
        "profile_columns": len(profile["columns"]), "snapshot_bytes": snapshot_bytes,
        "rss_after_import_mb": after_import["rss_mb"], **_memory(),
        "stages": {k: {"s": v, "calls": timers.calls[k]} for k, v in timers.seconds.items()},
        "peak_rss_after_stage_mb": timers.peak_after,
    }))


def child_pandas(csv: Path, result: Path) -> None:
    t0 = time.perf_counter()
    import pandas as pd

    import_s = time.perf_counter() - t0
    after_import = _memory()
    start = time.perf_counter()
    df = pd.read_csv(csv)
    read_s = time.perf_counter() - start
    after_read = _memory()
    start = time.perf_counter()
    described_all = df.describe(include="all")
    describe_all_s = time.perf_counter() - start
    after_describe_all = _memory()
    start = time.perf_counter()
    described = df.describe()
    describe_s = time.perf_counter() - start
    result.write_text(json.dumps({
        "import_s": import_s, "read_csv_s": read_s, "describe_all_s": describe_all_s,
        "describe_s": describe_s, "wall_s": read_s + describe_all_s, "rows": len(df),
        "frame_mb": df.memory_usage(deep=True).sum() / MB,
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
        "described_columns": [len(described_all.columns), len(described.columns)],
        "rss_after_import_mb": after_import["rss_mb"],
        "peak_rss_after_read_mb": after_read["peak_rss_mb"],
        "peak_rss_after_describe_all_mb": after_describe_all["peak_rss_mb"], **_memory(),
    }))


def run_child(args: list[str]) -> dict:
    """Run this script as a child with ``args``; return its result plus its ru_maxrss."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        result = Path(tmp) / "result.json"
        argv = [sys.executable, __file__, "--child", *args, "--result", str(result)]
        if args[0] == "loopml":
            argv += ["--workspace", str(Path(tmp) / "workspace")]
        start = time.perf_counter()
        proc = subprocess.Popen(argv)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        process_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"bench: the {args[0]} child failed (exit {proc.returncode})")
        out = json.loads(result.read_text())
    out["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    out["process_s"] = process_s
    return out


# -- report ----------------------------------------------------------------------------------

def _summary(runs: list[dict], rows: int, file_bytes: int) -> dict[str, float]:
    wall = statistics.median(r["wall_s"] for r in runs)
    peak = max(r["peak_rss_mb"] for r in runs)
    return {"wall_s": wall, "rows_per_s": rows / wall, "mb_per_s": file_bytes / MB / wall,
            "peak_rss_mb": peak, "peak_rss_share_of_file": peak * MB / file_bytes,
            "ru_maxrss_mb": max(r["ru_maxrss_mb"] for r in runs),
            "import_s": statistics.median(r["import_s"] for r in runs)}


def _stage_table(detail: dict, pandas_run: dict):
    """Return a table of the first loopml run's stages (nested ones indented) and pandas'."""
    from rich.table import Table

    table = Table(title="Where the time goes (first run of each side)")
    for column, justify in (("stage", "left"), ("seconds", "right"), ("share", "right"),
                            ("calls", "right"), ("peak RSS after", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    total = detail["wall_s"]
    stages = detail["stages"]
    nested = {"snapshot (total)": "snapshot: ", "DuckDB profile (total)": "profile: "}

    peaks = detail.get("peak_rss_after_stage_mb", {})

    def row(name: str, seconds: float, calls: object, indent: str = "") -> None:
        peak = peaks.get(name.removeprefix("loopml "))
        table.add_row(f"{indent}{name}", f"{seconds:.2f}", f"{seconds / total:.0%}", str(calls),
                      f"{peak:,.0f} MB" if peak is not None else "")

    top = {k: v for k, v in stages.items() if not k.startswith(tuple(nested.values()))}
    for name, stage in sorted(top.items(), key=lambda kv: -kv[1]["s"]):
        row(f"loopml {name}", stage["s"], stage["calls"])
        prefix = nested.get(name)
        if prefix:
            inner = sorted(((k, v) for k, v in stages.items() if k.startswith(prefix)),
                           key=lambda kv: -kv[1]["s"])
            shown = inner if prefix == "snapshot: " else inner[:6]
            for inner_name, inner_stage in shown:
                row(inner_name, inner_stage["s"], inner_stage["calls"], indent="    ")
            if len(shown) < len(inner):
                rest = inner[len(shown):]
                row(f"{prefix}{len(rest)} more", sum(v["s"] for _, v in rest),
                    sum(v["calls"] for _, v in rest), indent="    ")
    other = total - sum(v["s"] for v in top.values())
    row("loopml other (add() glue, reading the profile back)", other, "—")
    for name, key, peak_key in (
            ("read_csv", "read_csv_s", "peak_rss_after_read_mb"),
            ('describe(include="all")', "describe_all_s", "peak_rss_after_describe_all_mb"),
            ("describe() (numeric only; not in the total)", "describe_s", None)):
        seconds = pandas_run[key]
        peak = pandas_run.get(peak_key) if peak_key else None
        table.add_row(f"pandas {name}", f"{seconds:.2f}",
                      f"{seconds / pandas_run['wall_s']:.0%}", "1",
                      f"{peak:,.0f} MB" if peak is not None else "")
    return table


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    data = report["data"]
    lo, pd_ = report["loopml"], report["pandas"]
    table = Table(title=f"Ingest + profile of a {data['bytes'] / MB:,.0f} MB CSV "
                        f"({data['rows']:,} rows × {len(COLUMNS)} columns)",
                  caption="loopml does more work: CSV → checks → PII scan → content hash → "
                          "zstd Parquet snapshot → DuckDB profile (histograms, top values) → "
                          "HTML report → artifact store → SQLite; pandas parses and describes, "
                          "writes nothing")
    for column, justify in (("measurement", "left"), ("loopml add + profile", "right"),
                            ("pandas read_csv + describe(all)", "right"), ("ratio", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    ratios = report["ratios"]
    table.add_row("wall time", f"{lo['wall_s']:.1f} s", f"{pd_['wall_s']:.1f} s",
                  f"{ratios['speedup']:.2f}× speed-up")
    table.add_row("wall time, pandas with plain describe() (numeric columns only)", "",
                  f"{pd_['describe_plain_wall_s']:.1f} s",
                  f"{ratios['speedup_vs_plain_describe']:.2f}× speed-up")
    table.add_row("rows/s", f"{lo['rows_per_s']:,.0f}", f"{pd_['rows_per_s']:,.0f}", "")
    table.add_row("MB/s of CSV", f"{lo['mb_per_s']:,.1f}", f"{pd_['mb_per_s']:,.1f}", "")
    table.add_row("peak RSS", f"{lo['peak_rss_mb']:,.0f} MB", f"{pd_['peak_rss_mb']:,.0f} MB",
                  f"{ratios['memory']:.2f}× of pandas")
    table.add_row("peak RSS / file size", f"{lo['peak_rss_share_of_file']:.0%}",
                  f"{pd_['peak_rss_share_of_file']:.0%}", "")
    table.add_row("imports (not in wall time)", f"{lo['import_s']:.2f} s",
                  f"{pd_['import_s']:.2f} s", "")
    console.print(table)

    detail = report["loopml_runs"][0]
    if detail["stages"]:
        console.print(_stage_table(detail, report["pandas_runs"][0]))
    targets = report["targets"]
    console.print(f"target faster than pandas: {'met' if targets['faster'] else 'MISSED'} "
                  f"({ratios['speedup']:.2f}×); peak memory well under the file size "
                  f"(≤ {targets['memory_share_limit']:.0%}): "
                  f"{'met' if targets['memory'] else 'MISSED'} "
                  f"({lo['peak_rss_share_of_file']:.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0,
                        help="size of the generated CSV in GB (10^9 bytes; default 1.0)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per side; wall time is the median, memory the max (default 1)")
    parser.add_argument("--plain", action="store_true",
                        help="no stage timers in the loopml child")
    parser.add_argument("--cprofile", action="store_true",
                        help="also write a cProfile dump of the loopml child to bench/out/")
    parser.add_argument("--memory-share", type=float, default=0.5,
                        help="'well under the file size' means peak RSS ≤ this share (0.5)")
    parser.add_argument("--data-dir", type=Path, default=OUT_DIR,
                        help="where the CSV is generated and kept (default bench/out)")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="where to write the JSON")
    parser.add_argument("--child", choices=["loopml", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cprofile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "loopml":
        child_loopml(args.csv, args.workspace, args.result, plain=args.plain,
                     cprofile=args.cprofile_out)
        return 0
    if args.child == "pandas":
        child_pandas(args.csv, args.result)
        return 0
    try:
        import duckdb  # noqa: F401
    except ImportError:
        parser.exit(2, "bench: duckdb is not installed in this environment; loopml.data needs "
                       "it to profile (pip install duckdb)\n")

    where = machine()  # load average before the run: other work skews every figure
    csv, data, reused = ensure_csv(args.gb, args.seed, args.data_dir)
    file_bytes = data["bytes"]
    print(f"data: {csv} ({file_bytes / MB:,.0f} MB, {data['rows']:,} rows, "
          f"{'reused' if reused else 'generated'})", file=sys.stderr)
    cache_s = warm_cache(csv)

    loopml_runs, pandas_runs = [], []
    child_args = ["--csv", str(csv)]
    for attempt in range(args.repeat):
        print(f"run {attempt + 1}/{args.repeat}: loopml …", file=sys.stderr, flush=True)
        extra = ["--plain"] if args.plain else []
        if args.cprofile and attempt == 0:
            extra += ["--cprofile-out", str(args.out.parent / "ingest-loopml.prof")]
        loopml_runs.append(run_child(["loopml", *child_args, *extra]))
        print(f"  {loopml_runs[-1]['wall_s']:.1f} s; pandas …", file=sys.stderr, flush=True)
        pandas_runs.append(run_child(["pandas", *child_args]))
        print(f"  {pandas_runs[-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    for run in loopml_runs + pandas_runs:  # honesty check: both saw every row
        if run["rows"] != data["rows"]:
            raise SystemExit(f"bench: a child read {run['rows']:,} rows, the file has "
                             f"{data['rows']:,}")

    loopml = _summary(loopml_runs, data["rows"], file_bytes)
    pandas = _summary(pandas_runs, data["rows"], file_bytes)
    pandas["describe_plain_wall_s"] = statistics.median(
        r["read_csv_s"] + r["describe_s"] for r in pandas_runs)
    ratios = {"speedup": pandas["wall_s"] / loopml["wall_s"],
              "speedup_vs_plain_describe": pandas["describe_plain_wall_s"] / loopml["wall_s"],
              "memory": loopml["peak_rss_mb"] / pandas["peak_rss_mb"]}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": where,
        "versions": versions("loopml", "pandas", "pyarrow", "duckdb", "numpy"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                 if k not in ("child", "csv", "result", "workspace", "cprofile_out")},
        "data": {"path": str(csv), "rows": data["rows"], "bytes": file_bytes,
                 "columns": COLUMNS, "seed": args.seed, "reused": reused,
                 "page_cache_warm_read_s": cache_s},
        "loopml": loopml,
        "pandas": pandas,
        "ratios": ratios,
        "targets": {"faster": ratios["speedup"] > 1,
                    "memory_share_limit": args.memory_share,
                    "memory": loopml["peak_rss_share_of_file"] <= args.memory_share},
        "work_done": {
            "loopml": "stream CSV (pyarrow) → type/quoting/mixed-type checks → PII scan → "
                      "content hash (sha256) → zstd Parquet snapshot → DuckDB profile of every "
                      "column (count, distinct, min/max/mean/std, quantiles, 20-bin histogram, "
                      "top 50 values) → contract inference → HTML report → copy snapshot into "
                      "the artifact store (sha256) → SQLite version record",
            "pandas": "read_csv into memory → describe(include='all'); nothing written",
        },
        "loopml_runs": loopml_runs,
        "pandas_runs": pandas_runs,
    }
    print_report(report)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
