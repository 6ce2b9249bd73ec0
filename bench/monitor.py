"""Drift benchmark (issue 10): loopml's drift report against Evidently's DataDriftPreset.

Same data, same tests, one run:

- **Data**: 25 columns, 20 numeric of varied shapes (normal, skewed lognormal and Pareto,
  heavy-tailed t, bimodal, zero-inflated, integer counts, a narrow N(1000, 1), three with 5–30 %
  missing) and 5 categorical with 5, 10, 20, 30 and 50 levels (Zipf-like frequencies, one with
  5 % missing). Reference and current are two independent seeded samples (numpy, no download)
  of the same size; the current one carries planted shifts in 7 columns (``PLANTED``) and two
  small ones below the thresholds (``student_t3``: +0.03; ``cat30``: a 1 % move). Written once
  as Parquet under ``bench/out/monitor/data`` (reused when present) at 100k, 1M and 10M rows.
- **loopml**: ``loopml.monitor.drift.compare(reference_path, current_path)`` (as its two
  steps: ``Reference.from_parquet``, then ``compare`` with the current path) with the default
  settings (``DriftSettings()``: at these sizes the large-sample rule decides, Wasserstein
  distance / reference std ≥ 0.1 for numbers, Jensen–Shannon distance ≥ 0.1 for categories,
  or PSI ≥ 0.25).
- **Evidently 0.7**: ``Report([DataDriftPreset(num_method="wasserstein",
  cat_method="jensenshannon", num_threshold=0.1, cat_threshold=0.1, drift_share=0.3)])`` on
  the two files read with ``pandas.read_parquet`` (``bench/monitor_evidently.py``, in its own
  venv ``bench/out/evidently-venv``: Evidently 0.7 does not import under pandas 3).

Each tool runs in its own fresh process per case; its time is the whole computation from the
two Parquet files to the per-column verdicts (reading the files included; interpreter start
and imports not included, reported apart as the process's wall time); its peak memory is the
child's ``ru_maxrss`` (``os.wait4``). The data's size is the Arrow in-memory size of reference
plus current (``pyarrow.Table.nbytes``). The two tools' verdicts are compared column by column
and every disagreement is printed (with loopml's verdict by the same two statistics alone, so
a PSI-only verdict is told apart). The 10M case gives Evidently a wall limit
(``--evidently-limit-s``, 600 s) and an address-space limit (``--evidently-mem-gb``, 12 GB,
``RLIMIT_AS``) and reports how it ended.

A last case times ``loopml monitor`` over a 10M-row prediction log (``--predlog-rows``):
segments of 50k rows in the serving log's format, the current sample's 25 features as the
``inputs`` JSON, ten days of timestamps, a model trained on 100k reference rows.

Targets (issue): ≥ 50× faster than Evidently at 100k×25 and 1M×25, peak memory ≤ 2× the
data, and a 10M-row run that Evidently cannot finish.

Run: ``make bench-monitor`` (or ``.venv/bin/python bench/monitor.py``); results printed and
written to bench/out/monitor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine, versions, write_report  # bench/common.py, beside this script

# This file is bench/monitor.py: keep its folder from shadowing installed packages.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ROOT = HERE.parent
OUT = HERE / "out"
WORK = OUT / "monitor"
DATA = WORK / "data"
OUT_FILE = OUT / "monitor.json"
EVIDENTLY_VENV = OUT / "evidently-venv"
LOOPML_PY = ROOT / ".venv" / "bin" / "python"
CHUNK = 1_000_000  # rows a row group; generation never holds more than this
DATA_VERSION = 1   # bump when the generator changes: older files are rewritten
SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}

# --------------------------------------------------------------------------------- the data
# Each numeric column: (name, missing share, draw(rng, n, shifted)). ``shifted`` is the current
# sample's distribution; the planted shifts are far from the 0.1 thresholds (≥ 0.19 or ≤ 0.02
# by Wasserstein / std) so a binned and an exact statistic cannot honestly disagree.


def _bimodal(rng: Any, n: int, left: float) -> Any:
    import numpy as np

    return np.where(rng.random(n) < left, rng.normal(-2, 0.5, n), rng.normal(2, 0.5, n))


def _zero_inflated(rng: Any, n: int, zeros: float) -> Any:
    import numpy as np

    return np.where(rng.random(n) < zeros, 0.0, rng.exponential(5, n))


NUMERIC: list[tuple[str, float, Any]] = [
    ("normal", 0.0, lambda r, n, s: r.normal(0.5 if s else 0.0, 1, n)),
    ("normal_50_10", 0.0, lambda r, n, s: r.normal(50, 10, n)),
    ("lognormal", 0.0, lambda r, n, s: r.lognormal(0, 1, n) * (1.5 if s else 1.0)),
    ("exponential", 0.0, lambda r, n, s: r.exponential(2, n)),
    ("uniform_0_100", 0.0, lambda r, n, s: r.uniform(0, 100, n)),
    ("student_t3", 0.0, lambda r, n, s: r.standard_t(3, n) + (0.03 if s else 0.0)),
    ("gamma", 0.0, lambda r, n, s: r.gamma(2, 2, n)),
    ("beta", 0.0, lambda r, n, s: r.beta(2, 5, n)),
    ("poisson3", 0.0, lambda r, n, s: r.poisson(3, n).astype("float64")),
    ("bimodal", 0.0, lambda r, n, s: _bimodal(r, n, 0.4 if s else 0.5)),
    ("normal_miss10", 0.10, lambda r, n, s: r.normal(0, 1.5 if s else 1.0, n)),
    ("lognormal_miss30", 0.30, lambda r, n, s: r.lognormal(1, 0.5, n)),
    ("pareto", 0.0, lambda r, n, s: r.pareto(3, n) + 1),
    ("narrow_1000", 0.0, lambda r, n, s: r.normal(1000, 1, n)),
    ("int_0_100", 0.0, lambda r, n, s: r.integers(0, 101, n).astype("float64")),
    ("chi2_4", 0.0, lambda r, n, s: r.chisquare(4, n)),
    ("zero_inflated", 0.0, lambda r, n, s: _zero_inflated(r, n, 0.45 if s else 0.6)),
    ("normal_miss5", 0.05, lambda r, n, s: r.normal(-5, 3, n)),
    ("weibull", 0.0, lambda r, n, s: r.weibull(1.5, n)),
    ("laplace", 0.0, lambda r, n, s: r.laplace(0, 1, n)),
]
# Each categorical column: (name, levels, missing share).
CATEGORICAL: list[tuple[str, int, float]] = [
    ("cat5", 5, 0.0), ("cat10", 10, 0.0), ("cat20", 20, 0.05), ("cat30", 30, 0.0),
    ("cat50", 50, 0.0)]
PLANTED = ["normal", "lognormal", "bimodal", "normal_miss10", "zero_inflated", "cat10", "cat50"]
COLUMNS = [name for name, _, _ in NUMERIC] + [name for name, _, _ in CATEGORICAL]


def _category_probabilities(levels: int, name: str, shifted: bool) -> Any:
    """Return the level frequencies (Zipf-like) of one categorical column, and the new ones."""
    import numpy as np

    p = 1.0 / np.arange(1, levels + 1) ** 0.8
    p /= p.sum()
    if shifted and name == "cat10":
        p = p[::-1].copy()  # the rare levels become the common ones
    if shifted and name == "cat30":
        p = p * 0.99 + 0.01 / levels  # a 1 % move: below any threshold
    return p


def _chunk_table(rows: int, *, seed: int, shifted: bool, chunk: int) -> Any:
    """Return one chunk of the sample as an Arrow table (nulls for missing values)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, int(shifted), chunk])
    arrays = {}
    for name, missing, draw in NUMERIC:
        values = draw(rng, rows, shifted)
        mask = rng.random(rows) < missing if missing else None
        arrays[name] = pa.array(values, type=pa.float64(), mask=mask)
    for name, levels, missing in CATEGORICAL:
        p = _category_probabilities(levels, name, shifted)
        dictionary = pa.array([f"{name}_L{k:02d}" for k in range(levels)]
                              + [f"{name}_NEW{k}" for k in range(5)])
        codes = rng.choice(levels, size=rows, p=p)
        if shifted and name == "cat50":  # 8 % of rows in five levels the reference never saw
            new = rng.random(rows) < 0.08
            codes = np.where(new, levels + rng.integers(0, 5, rows), codes)
        values = pc.take(dictionary, pa.array(codes.astype("int32")))
        if missing:
            values = pc.if_else(pa.array(rng.random(rows) < missing),
                                pa.scalar(None, pa.string()), values)
        arrays[name] = values
    return pa.table(arrays)


def write_sample(path: Path, rows: int, *, seed: int, shifted: bool) -> int:
    """Write one sample as Parquet in row groups of ``CHUNK`` rows; return its Arrow nbytes."""
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".parquet.tmp")
    nbytes, writer = 0, None
    try:
        for chunk, start in enumerate(range(0, rows, CHUNK)):
            table = _chunk_table(min(CHUNK, rows - start), seed=seed, shifted=shifted,
                                 chunk=chunk)
            nbytes += table.nbytes
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=CHUNK)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return nbytes


def sample_pair(label: str, rows: int) -> dict[str, Any]:
    """Return the paths and sizes of one case's reference and current files (written once)."""
    folder = DATA / label
    meta_file = folder / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("version") == DATA_VERSION and meta.get("rows") == rows:
            return meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    reference, current = folder / "reference.parquet", folder / "current.parquet"
    meta = {"version": DATA_VERSION, "rows": rows, "columns": len(COLUMNS),
            "reference": str(reference), "current": str(current),
            "reference_nbytes": write_sample(reference, rows, seed=1, shifted=False),
            "current_nbytes": write_sample(current, rows, seed=2, shifted=True)}
    meta["data_nbytes"] = meta["reference_nbytes"] + meta["current_nbytes"]
    meta["file_bytes"] = reference.stat().st_size + current.stat().st_size
    meta_file.write_text(json.dumps(meta, indent=2))
    print(f"  wrote the {label} sample in {time.perf_counter() - start:.0f} s "
          f"({meta['file_bytes'] / 1e6:.0f} MB on disk, "
          f"{meta['data_nbytes'] / 1e6:.0f} MB in memory)", flush=True)
    return meta


# ------------------------------------------------------------------------ running a child


def measure(command: list[str], *, log: Path, limit_s: float | None = None,
            memory_bytes: int | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> dict[str, Any]:
    """Run ``command`` alone; return its exit, wall time, peak RSS and how it ended.

    The peak is the child's own ``ru_maxrss`` (from ``os.wait4`` on it, so earlier runs do
    not count); past ``limit_s`` its process group is killed; ``memory_bytes`` caps its
    address space (``RLIMIT_AS``), so an allocation past it fails inside the child.
    """
    import resource

    def cap() -> None:
        if memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True, preexec_fn=cap, cwd=cwd,
                                 env={**os.environ, **(env or {})})
        killed = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if limit_s is not None and not killed and time.perf_counter() - start > limit_s:
                os.killpg(child.pid, signal.SIGKILL)  # the child's own group only
                killed = True
            time.sleep(0.05)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    code = child.returncode
    if killed:
        ended = f"killed at the {limit_s:.0f} s wall limit"
    elif code == 0:
        ended = "finished"
    elif code < 0:
        ended = f"killed by signal {-code}" + (" (the kernel's OOM killer?)"
                                               if -code == signal.SIGKILL else "")
    else:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        ended = f"failed (exit {code}): {tail[0][:200]}"
    return {"rc": code, "ended": ended, "process_wall_s": round(wall, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is in KiB on Linux


def run_tool(tool: str, meta: dict[str, Any], label: str, *, limit_s: float | None = None,
             memory_gb: float | None = None) -> dict[str, Any]:
    """Run one tool on one case in a fresh process; return the measure and its results."""
    result_file = WORK / f"{tool}-{label}.json"
    result_file.unlink(missing_ok=True)
    if tool == "loopml":
        command = [str(LOOPML_PY), str(Path(__file__).resolve()), "--child",
                   meta["reference"], meta["current"], str(result_file)]
    else:
        command = [str(EVIDENTLY_VENV / "bin" / "python"), str(HERE / "monitor_evidently.py"),
                   meta["reference"], meta["current"], str(result_file),
                   "--numeric", ",".join(name for name, _, _ in NUMERIC),
                   "--categorical", ",".join(name for name, _, _ in CATEGORICAL),
                   *_thresholds()]
    memory = None if memory_gb is None else int(memory_gb * (1 << 30))
    print(f"  {tool} {label} ...", end=" ", flush=True)
    load = os.getloadavg()[0]  # other work on a shared machine skews the time
    out = measure(command, log=WORK / f"{tool}-{label}.log", limit_s=limit_s,
                  memory_bytes=memory)
    out.update({"tool": tool, "case": label, "rows": meta["rows"],
                "limit_s": limit_s, "memory_limit_gb": memory_gb, "load_1m_before": load})
    if out["rc"] == 0 and result_file.exists():
        out.update(json.loads(result_file.read_text()))
    if out.get("seconds") is None:  # how far it got (the child logs its stages)
        out["stages"] = _stages(WORK / f"{tool}-{label}.log")
    out["peak_vs_data"] = round(out["peak_rss_mb"] * 1e6 / meta["data_nbytes"], 2)
    seconds = out.get("seconds")
    print(f"{out['ended']}; " + (f"{seconds:.2f} s, " if seconds is not None else "")
          + f"peak {out['peak_rss_mb']:.0f} MB", flush=True)
    return out


def _thresholds() -> list[str]:
    """Return loopml's default large-sample thresholds as Evidently's script takes them."""
    from loopml.monitor.settings import DriftSettings

    settings = DriftSettings()
    return ["--num-threshold", str(settings.wasserstein), "--cat-threshold",
            str(settings.jensen_shannon), "--drift-share", str(settings.share)]


def _stages(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines()
            if line.startswith("stage ")]


def head_files(reference: str, current: str, folder: str, rows: int = 1000) -> tuple[str, str]:
    """Write the first ``rows`` rows of both files into ``folder``; return the two paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for source in (reference, current):
        batch = next(pq.ParquetFile(source).iter_batches(batch_size=rows))
        paths.append(str(Path(folder) / Path(source).name))
        pq.write_table(pa.Table.from_batches([batch]), paths[-1])
    return paths[0], paths[1]


def child_loopml(reference: str, current: str, result_file: str) -> None:
    """In the child: loopml's drift report over two Parquet files, timed, as JSON.

    ``compare(reference_path, current_path)`` in its two public steps, so the time of the
    reference shows apart (``loopml monitor`` builds it once per dataset version, from the
    stored profile): ``Reference.from_parquet`` (two streamed passes over the file, what
    ``compare`` does with a path), then ``compare`` of that reference with the streamed
    current file. A first call on the files' first 1,000 rows keeps imports and first-call
    set-up out of the time, as Evidently's are.
    """
    import resource
    import tempfile

    from loopml.monitor.drift import compare
    from loopml.monitor.settings import DriftSettings
    from loopml.monitor.sketch import Reference

    def drift(reference: str, current: str) -> tuple[Any, float]:
        start = time.perf_counter()
        ref = Reference.from_parquet(reference)
        profiled = time.perf_counter()
        return compare(ref, current), profiled - start

    with tempfile.TemporaryDirectory() as folder:
        drift(*head_files(reference, current, folder))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, before the data
    settings = DriftSettings()
    start = time.perf_counter()
    result, reference_seconds = drift(reference, current)
    seconds = time.perf_counter() - start
    columns = {}
    for feature in result.features:
        number = feature.kind == "numeric"
        value = feature.wasserstein_norm if number else feature.js_distance
        threshold = settings.wasserstein if number else settings.jensen_shannon
        columns[feature.name] = {
            "kind": feature.kind, "value": value, "psi": feature.psi,
            "drifted": bool(feature.drifted), "decided_by": feature.decided_by,
            # the verdict by the same statistic and threshold as Evidently's, PSI left out
            "same_rule": value is not None and value >= threshold}
    Path(result_file).write_text(json.dumps({
        "seconds": round(seconds, 3), "reference_seconds": round(reference_seconds, 3),
        "baseline_rss_mb": round(baseline, 1),
        "columns": columns, "drifted": sorted(result.drifted), "share": result.share,
        "dataset_drift": result.dataset_drift, "rule": result.rule}))


# ------------------------------------------------------------------------ the agreement


def agreement(loopml: dict[str, Any], evidently: dict[str, Any]) -> dict[str, Any]:
    """Return which columns each tool calls drifted and every column where they differ."""
    ours, theirs = loopml.get("columns") or {}, evidently.get("columns") or {}
    differ, gaps = [], []
    for name in COLUMNS:
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            gaps.append(name)
            continue
        if a["drifted"] != b["drifted"] or a["same_rule"] != b["drifted"]:
            differ.append({"column": name, "loopml": a["drifted"],
                           "loopml_same_rule": a["same_rule"], "evidently": b["drifted"],
                           "loopml_value": a["value"], "loopml_psi": a["psi"],
                           "evidently_value": b["value"], "decided_by": a["decided_by"]})
    gap = max((abs(ours[n]["value"] - theirs[n]["value"]) for n in COLUMNS
               if n in ours and n in theirs and ours[n]["value"] is not None
               and theirs[n]["value"] is not None), default=None)
    return {"loopml_drifted": sorted(n for n, c in ours.items() if c["drifted"]),
            "evidently_drifted": sorted(n for n, c in theirs.items() if c["drifted"]),
            "planted": sorted(PLANTED), "disagreements": differ, "missing_columns": gaps,
            "largest_statistic_gap": None if gap is None else round(gap, 4)}


def print_agreement(label: str, found: dict[str, Any]) -> None:
    same = found["loopml_drifted"] == found["evidently_drifted"] and not found["disagreements"]
    planted = found["loopml_drifted"] == found["planted"]
    print(f"  {label}: loopml drifted {found['loopml_drifted']}; "
          + ("Evidently agrees" if same else f"Evidently: {found['evidently_drifted']}")
          + ("; = the planted columns" if planted else f"; planted {found['planted']}")
          + (f"; largest |statistic gap| {found['largest_statistic_gap']}"
             if found["largest_statistic_gap"] is not None else ""), flush=True)
    for row in found["disagreements"]:
        print(f"    DISAGREE {row['column']}: loopml {row['loopml']} (by the same statistic: "
              f"{row['loopml_same_rule']}, value {row['loopml_value']}, psi {row['loopml_psi']},"
              f" {row['decided_by']}) vs Evidently {row['evidently']} "
              f"(value {row['evidently_value']})", flush=True)
    if found["missing_columns"]:
        print(f"    columns missing from one result: {found['missing_columns']}")


# ---------------------------------------------------------------------- the prediction log
PREDLOG_DAYS = 10
PREDLOG_START_US = 1_795_132_800_000_000  # 2026-11-20 00:00 UTC
SEGMENT_ROWS = 50_000


def _json_objects(table: Any) -> Any:
    """Return each row of ``table`` as JSON object text (nulls as null), built column-wise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces: list[Any] = []
    for index, name in enumerate(table.column_names):
        column = table[name]
        if pa.types.is_floating(column.type):
            text = pc.cast(column, pa.string())
        else:  # the generated levels need no escaping
            text = pc.binary_join_element_wise('"', column, '"', "")
        pieces += [("{" if index == 0 else ",") + json.dumps(name) + ":",
                   pc.fill_null(text, "null")]
    return pc.binary_join_element_wise(*pieces, "}", "")


def _segment(features: Any, first: int, total: int, *, model: str, version: int) -> Any:
    """Return one log segment (PREDICTION_SCHEMA) for rows ``first`` .. of ``total``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from loopml.predlog import PREDICTION_SCHEMA

    n = features.num_rows
    index = np.arange(first, first + n)
    span_us = PREDLOG_DAYS * 86_400_000_000
    ts = PREDLOG_START_US + index * (span_us // total)
    # The model's answer is not what is timed: a logistic of two features stands in for it.
    x = np.nan_to_num(features["normal"].to_numpy(zero_copy_only=False))
    z = np.nan_to_num(features["bimodal"].to_numpy(zero_copy_only=False))
    p = 1 / (1 + np.exp(-(0.8 * x + 0.4 * z)))
    probabilities = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * n + 1, 2, dtype="int32")),
        pa.array(np.column_stack([1 - p, p]).ravel()))
    return pa.table({
        "request_id": pc.binary_join_element_wise(
            "r", pc.cast(pa.array(index), pa.string()), ""),
        "row": pa.array(np.zeros(n, dtype="int64")),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "model": pa.array([model] * n, pa.string()),
        "version": pa.array(np.full(n, version, dtype="int64")),
        "flavour": pa.array(["onnx"] * n, pa.string()),
        "latency_ms": pa.array(np.full(n, 1.5)),
        "prediction": pa.array(np.where(p >= 0.5, "1", "0")),
        "probabilities": probabilities,
        "inputs": _json_objects(features),
    }, schema=PREDICTION_SCHEMA)


def write_predlog(folder: Path, rows: int, *, model: str, version: int) -> dict[str, Any]:
    """Write a ``rows``-row prediction log of the current sample; return its size (once)."""
    import pyarrow.parquet as pq

    meta_file = folder / "log.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if (meta.get("rows"), meta.get("model"), meta.get("version"),
                meta.get("data_version")) == (rows, model, version, DATA_VERSION):
            return meta
    shutil.rmtree(folder / "predictions", ignore_errors=True)
    start, segments, file_bytes, written = time.perf_counter(), 0, 0, 0
    for chunk, first in enumerate(range(0, rows, CHUNK)):
        table = _chunk_table(min(CHUNK, rows - first), seed=2, shifted=True, chunk=chunk)
        for offset in range(0, table.num_rows, SEGMENT_ROWS):
            part = _segment(table.slice(offset, SEGMENT_ROWS), first + offset, rows,
                            model=model, version=version)
            last_ms = part["ts"][-1].value // 1000 + 1  # published after its last row
            day = time.strftime("%Y-%m-%d", time.gmtime(last_ms / 1000))
            path = folder / "predictions" / day / f"{last_ms:013d}-4242-0be4c4-{segments}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path)
            segments, written = segments + 1, written + part.num_rows
            file_bytes += path.stat().st_size
    meta = {"rows": written, "segments": segments, "file_bytes": file_bytes, "model": model,
            "version": version, "data_version": DATA_VERSION, "days": PREDLOG_DAYS}
    meta_file.write_text(json.dumps(meta, indent=2))
    print(f"  wrote the {written:,}-row log in {time.perf_counter() - start:.0f} s "
          f"({segments} segments, {file_bytes / 1e9:.2f} GB)", flush=True)
    return meta


def predlog_model(folder: Path) -> dict[str, Any]:
    """Train and register the model the log is for, on 100k reference rows (once)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from loopml.config import ProjectConfig
    from loopml.data.profile import PROFILE_VERSION
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    meta_file = folder / "model.json"
    if meta_file.exists():  # the reference is the dataset's profile: same format, same model
        meta = json.loads(meta_file.read_text())
        if meta.get("profile_version") == PROFILE_VERSION:
            return meta
    home = folder / "home"
    shutil.rmtree(home, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    table = _chunk_table(100_000, seed=1, shifted=False, chunk=0)
    x = np.nan_to_num(table["normal"].to_numpy(zero_copy_only=False))
    z = np.nan_to_num(table["bimodal"].to_numpy(zero_copy_only=False))
    noise = np.random.default_rng(3).normal(0, 1, table.num_rows)
    source = folder / "train.parquet"
    pq.write_table(table.append_column("label", pc.cast(
        np.asarray(0.8 * x + 0.4 * z + noise > 0), "int64")), source)
    config = ProjectConfig.model_validate({
        "project": {"name": "drift"},
        "data": {"dataset": "drift", "source": str(source), "target": "label"},
        "train": {"candidates": ["lightgbm"], "trials": 1, "n_jobs": 1, "seed": 7},
        "models": {"name": "drift"},
    })
    outcome = train_project(config, workspace=Workspace.from_env(home, env={}),
                            project_dir=ROOT)
    meta = {"home": str(home), "ref": outcome.version.ref, "model": "drift",
            "version": int(outcome.version.ref.split("@")[1]),
            "profile_version": PROFILE_VERSION}
    meta_file.write_text(json.dumps(meta, indent=2))
    return meta


def run_predlog(rows: int) -> dict[str, Any]:
    """Time ``loopml monitor`` over a ``rows``-row prediction log; return the measure."""
    loopml = ROOT / ".venv" / "bin" / "loopml"
    probe = subprocess.run([str(loopml), "monitor", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("  loopml monitor is not there yet: the log case is skipped", flush=True)
        return {"case": "predlog", "ended": "skipped: `loopml monitor --help` failed"}
    folder = WORK / "predlog"
    model = predlog_model(folder)
    log_meta = write_predlog(folder, rows, model=model["model"], version=model["version"])
    reports = folder / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    # --rebuild: the cursor in the store would otherwise leave an earlier run's log unread.
    command = [str(loopml), "monitor", model["ref"], "--window", "1d", "--log-dir", str(folder),
               "--home", model["home"], "--out", str(reports), "--settle", "0", "--rebuild"]
    print(f"  loopml monitor over {log_meta['rows']:,} logged rows ...", end=" ", flush=True)
    load = os.getloadavg()[0]
    out = measure(command, log=WORK / "predlog-monitor.log", cwd=folder,
                  env={"COLUMNS": "160"})
    out.update({"case": "predlog", "tool": "loopml monitor", "rows": log_meta["rows"],
                "segments": log_meta["segments"], "log_file_bytes": log_meta["file_bytes"],
                "command": " ".join(command), "load_1m_before": load,
                "report": _report_summary(reports)})
    print(f"{out['ended']}; {out['process_wall_s']:.1f} s, peak {out['peak_rss_mb']:.0f} MB; "
          f"{out['report']}", flush=True)
    return out


def _report_summary(reports: Path) -> dict[str, Any]:
    """Return what the monitor's JSON report says in brief: windows, rows, drifted, alerts."""
    for path in sorted(reports.glob("**/*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(report, dict) or "windows" not in report:
            continue
        windows = report["windows"]
        return {"file": str(path), "windows": len(windows),
                "rows": sum(w.get("rows") or 0 for w in windows),
                "drifted": sorted({name for w in windows
                                   for name in (w.get("drift") or {}).get("drifted") or []}),
                "alerts": len(report.get("alerts") or [])}
    return {"file": None}


# ---------------------------------------------------------------------------------- main


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 1)


def print_table(rows: list[dict[str, Any]], data: dict[str, dict[str, Any]]) -> None:
    print("\ncase   data MB  tool        seconds  (reference)  process s  peak MB  (baseline)"
          "  peak/data  ended")
    for row in rows:
        if row.get("case") not in data:
            continue
        seconds, reference = row.get("seconds"), row.get("reference_seconds")
        baseline = row.get("baseline_rss_mb")
        print(f"{row['case']:<6} {data[row['case']]['data_nbytes'] / 1e6:>7.0f}  {row['tool']:<9}"
              f"  {'-' if seconds is None else f'{seconds:.2f}':>7}"
              f"  {'' if reference is None else f'({reference:.2f})':>11}"
              f"  {row['process_wall_s']:>9.1f}  {row['peak_rss_mb']:>7.0f}"
              f"  {'' if baseline is None else f'({baseline:.0f})':>10}"
              f"  {row['peak_vs_data']:>9.2f}  {row['ended']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("REFERENCE", "CURRENT", "RESULT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--evidently-limit-s", type=float, default=600.0,
                        help="wall limit of Evidently's 10M run")
    parser.add_argument("--evidently-mem-gb", type=float, default=12.0,
                        help="address-space limit (RLIMIT_AS) of Evidently's 10M run")
    parser.add_argument("--skip-evidently", nargs="*", default=[], choices=list(SIZES),
                        help="cases where Evidently is not run")
    parser.add_argument("--predlog-rows", type=int, default=10_000_000,
                        help="rows of the prediction-log case (0: skip it)")
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    args = parser.parse_args()
    if args.child:
        child_loopml(*args.child)
        return
    if not (EVIDENTLY_VENV / "bin" / "python").exists():
        sys.exit(f"no Evidently venv at {EVIDENTLY_VENV}: run `make bench-monitor`, which "
                 f"makes it (Evidently 0.7 needs pandas < 3, so it lives apart)")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    report: dict[str, Any] = {
        "started": started, "machine": machine(),
        "versions": {**versions("loopml", "pyarrow", "numpy"),
                     "evidently": _venv_version(EVIDENTLY_VENV, "evidently"),
                     "evidently_pandas": _venv_version(EVIDENTLY_VENV, "pandas")},
        "git": _git(), "data": {}, "runs": [], "agreement": {}, "ratios": {}}
    print("data", flush=True)
    for label in args.sizes:
        report["data"][label] = sample_pair(label, SIZES[label])
    for label in args.sizes:
        meta = report["data"][label]
        print(f"case {label}: {meta['rows']:,} rows × {meta['columns']} columns, reference + "
              f"current = {meta['data_nbytes'] / 1e6:.0f} MB in memory", flush=True)
        ours = run_tool("loopml", meta, label)
        report["runs"].append(ours)
        if label in args.skip_evidently:
            continue
        big = label == "10M"
        theirs = run_tool("evidently", meta, label,
                          limit_s=args.evidently_limit_s if big else None,
                          memory_gb=args.evidently_mem_gb if big else None)
        report["runs"].append(theirs)
        current_only = (None if ours.get("seconds") is None
                        else ours["seconds"] - ours["reference_seconds"])
        report["ratios"][label] = {
            "evidently_over_loopml_seconds": ratio(theirs.get("seconds"), ours.get("seconds")),
            # loopml monitor profiles a dataset version once; Evidently redoes it every run
            "evidently_over_loopml_reference_stored": ratio(theirs.get("seconds"),
                                                            current_only),
            "evidently_over_loopml_peak": ratio(theirs["peak_rss_mb"], ours["peak_rss_mb"]),
            "loopml_peak_vs_data": ours["peak_vs_data"],
            "evidently_peak_vs_data": theirs["peak_vs_data"]}
        if ours.get("columns") and theirs.get("columns"):
            report["agreement"][label] = agreement(ours, theirs)
            print_agreement(label, report["agreement"][label])
        print(f"  ratios: {report['ratios'][label]}", flush=True)
        write_report(args.out, report)  # a long run keeps what it has so far
    if args.predlog_rows:
        print("case predlog", flush=True)
        report["predlog"] = run_predlog(args.predlog_rows)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print_table(report["runs"], report["data"])
    write_report(args.out, report)


def _git() -> dict[str, Any]:
    """Return the commit measured and the files of the measured packages not committed yet."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    return {"head": git("rev-parse", "HEAD"),
            "uncommitted": git("status", "--short", "src/loopml/monitor", "src/loopml/data",
                               "src/loopml/cli").splitlines()}


def _venv_version(venv: Path, package: str) -> str:
    try:
        return subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             f"from importlib.metadata import version; print(version({package!r}))"],
            capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not installed"


if __name__ == "__main__":
    main()
