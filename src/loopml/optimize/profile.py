"""Latency profile of a native model and its ONNX form, and the flavour to serve.

For each flavour: single-row latency (p50/p99 over calls of one row each, after warm-up),
rows per second on batches of 1,000 and 100,000 rows (resampled from the given rows), the
file size and the peak memory while scoring the large batch. For the ONNX flavour, the bare
``session.run`` on prepared inputs is timed too, apart from the wrapper that turns a frame
into inputs. Bounded: each timing loop stops at its call count or its time cap, whichever
comes first, and a model too slow for the large batch within the cap is timed on fewer
rows (``rows_timed_100k`` says how many), so a slow model cannot make a profile run for
minutes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CALLS = 200
WARMUP = 10
SINGLE_ROW_CAP_S = 2.0
BATCHES = (1_000, 100_000)
BATCH_CAP_S = 3.0  # the large batch is timed once; smaller ones repeat up to this cap


def profile(native: Any, onnx_model: Any, frame: pd.DataFrame, *, onnx_bytes: int | bytes,
            native_bytes: int | bytes, calls: int = CALLS, batches: tuple[int, ...] = BATCHES,
            seed: int = 0) -> dict[str, Any]:
    """Return latency, throughput, size and memory per flavour (``native``, ``onnx``).

    Examples
    --------
    >>> profile(trained, onnx_model, test, onnx_bytes=len(blob), native_bytes=size)
    ... # doctest: +SKIP
    {'native': {'single_row_p50_us': 9412.0, ...}, 'onnx': {...}, 'rows': 300, ...}
    """
    if len(frame) == 0:
        return {}
    columns = list(native.input_columns)
    frame = frame[columns]
    out: dict[str, Any] = {"rows": len(frame), "calls": calls,
                           "batches": list(batches)}
    samples = {rows: frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
               for rows in batches}
    for name, model, size in (("native", native, native_bytes),
                              ("onnx", onnx_model, onnx_bytes)):
        entry = _single_row(model, frame, calls=calls)
        rate = None
        for rows, batch in sorted(samples.items()):
            if rate is not None and rows / rate > BATCH_CAP_S:
                # a slow model: time as many rows as fit the cap, and say how many
                batch = batch.head(max(1, int(rate * BATCH_CAP_S)))
            measure_memory = rows == max(batches)
            rate, memory = _batch(model, batch, memory=measure_memory)
            entry[f"rows_per_s_{_label(rows)}"] = rate
            if len(batch) < rows:
                entry[f"rows_timed_{_label(rows)}"] = len(batch)
            if measure_memory:
                entry.update(memory)
        entry["size_bytes"] = len(size) if isinstance(size, bytes | bytearray) else int(size)
        out[name] = entry
    session = getattr(onnx_model, "session", None)
    if session is not None:
        out["onnx"].update(_session_only(onnx_model, frame, calls=calls))
    return out


def choose_flavour(parity: Any, profile: dict[str, Any]) -> str:
    """Return ``"onnx"`` when parity passed and ONNX is faster on single-row p99, else native.

    Why that criterion: a served model answers one request at a time, and what users and
    SLOs feel is the slow tail of that latency, not the median; batch scoring gains less from
    ONNX and can use either flavour. Parity comes first: a faster model that answers
    differently is a different model.
    """
    passed = parity.get("passed") if isinstance(parity, dict) else getattr(parity, "passed",
                                                                          False)
    try:
        faster = profile["onnx"]["single_row_p99_us"] < profile["native"]["single_row_p99_us"]
    except (KeyError, TypeError):
        return "native"
    return "onnx" if passed and faster else "native"


def _single_row(model: Any, frame: pd.DataFrame, *, calls: int) -> dict[str, Any]:
    rows = [frame.iloc[[i % len(frame)]] for i in range(calls)]
    call = model.predict_proba if model.task != "regression" else model.predict
    for row in rows[:WARMUP]:
        call(row)
    times = _timed(call, rows)
    return {"single_row_p50_us": _percentile(times, 50), "single_row_p99_us":
            _percentile(times, 99), "single_row_calls": len(times)}


def _session_only(onnx_model: Any, frame: pd.DataFrame, *, calls: int) -> dict[str, Any]:
    from loopml.optimize.contract import input_feeds

    signature = onnx_model.signature
    output = [next(iter(signature["outputs"].values()))]
    feeds = [input_feeds(frame.iloc[[i % len(frame)]], signature) for i in range(calls)]
    for feed in feeds[:WARMUP]:
        onnx_model.session.run(output, feed)
    times = _timed(lambda feed: onnx_model.session.run(output, feed), feeds)
    return {"session_p50_us": _percentile(times, 50), "session_p99_us":
            _percentile(times, 99)}


def _timed(call: Any, inputs: list[Any]) -> list[float]:
    times: list[float] = []
    deadline = time.perf_counter() + SINGLE_ROW_CAP_S
    for value in inputs:
        start = time.perf_counter()
        call(value)
        end = time.perf_counter()
        times.append((end - start) * 1e6)
        if end > deadline and len(times) >= 20:
            break
    return times


def _batch(model: Any, batch: pd.DataFrame, *, memory: bool) -> tuple[float, dict[str, Any]]:
    call = model.predict_proba if model.task != "regression" else model.predict
    call(batch.head(100))  # warm caches and lazy imports outside the timing
    sampler = _RssSampler() if memory else None
    seconds, runs = 0.0, 0
    if sampler:
        sampler.start()
    while runs == 0 or (seconds < BATCH_CAP_S / 3 and not memory and runs < 50):
        start = time.perf_counter()
        call(batch)
        seconds += time.perf_counter() - start
        runs += 1
    extra = sampler.stop() if sampler else {}
    return round(runs * len(batch) / seconds, 1), extra


class _RssSampler:
    """Samples this process's resident memory in a thread; ``stop`` returns peak and rise."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._peak = 0
        self._base: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._base = _rss_bytes()
        self._peak = self._base or 0
        if self._base is not None:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes() or 0)
            self._stop.wait(self.interval_s)

    def stop(self) -> dict[str, Any]:
        if self._base is None:
            return {"peak_rss_mb": None, "peak_rise_mb": None}
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _rss_bytes() or 0)
        mb = 1 << 20
        return {"peak_rss_mb": round(self._peak / mb, 1),
                "peak_rise_mb": round((self._peak - self._base) / mb, 1)}


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: no cheap way to read it
        return None


def _percentile(times: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(times, q)), 1)


def _label(rows: int) -> str:
    return f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)
