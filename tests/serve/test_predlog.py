"""The prediction log: exactly-once under concurrency, never blocking, safe under SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.errors import InvalidInput
from loopml.serve.predlog import (
    FEEDBACK_SCHEMA,
    PREDICTION_SCHEMA,
    PredictionLog,
    list_segments,
    read_log,
    segments_after,
    to_json,
)


def _records(request_id: str, rows: int, **extra) -> list[dict]:
    return [{"request_id": request_id, "row": r, "model": "credit", "version": 3,
             "flavour": "onnx", "latency_ms": 1.5, "prediction": r % 2,
             "probabilities": [0.25, 0.75], "inputs": {"x": r, "name": f"n{r}"}, **extra}
            for r in range(rows)]


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(".parquet"))


def test_concurrent_writers_every_row_exactly_once(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=64, flush_seconds=0.01).start()
    expected: set[tuple[str, int]] = set()
    lock = threading.Lock()
    refused = []

    def client(t: int) -> None:
        for i in range(100):
            rid = f"t{t}-{i}"
            rows = 1 + (t + i) % 3
            if not log.write(_records(rid, rows)):
                refused.append(rid)
            with lock:
                expected.update((rid, r) for r in range(rows))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.close()
    assert refused == []

    table = read_log(tmp_path)
    keys = list(zip(table.column("request_id").to_pylist(), table.column("row").to_pylist(),
                    strict=True))
    assert len(keys) == len(expected) == log.written
    assert set(keys) == expected
    assert log.queued == 0 and log.dropped == 0 and log.rejected == 0
    assert log.segments == len(list_segments(tmp_path)) > 1
    assert table.schema.equals(PREDICTION_SCHEMA)


class _StalledLog(PredictionLog):
    """A log whose writer blocks inside its first segment write until ``gate`` is set."""

    def __init__(self, folder, *, gate: threading.Event, entered: threading.Event, **kw):
        super().__init__(folder, **kw)
        self.gate, self.entered = gate, entered

    def _write_segment(self, table: pa.Table) -> str:
        self.entered.set()
        self.gate.wait()
        return super()._write_segment(table)


def test_full_queue_refuses_at_once_while_the_writer_is_stalled(tmp_path):
    gate, entered = threading.Event(), threading.Event()
    log = _StalledLog(tmp_path, gate=gate, entered=entered, flush_rows=5, flush_seconds=3600,
                      queue_rows=10).start()
    try:
        assert log.write(_records("a", 5))
        assert entered.wait(10)  # the writer holds "a" and is stuck writing it
        assert log.write(_records("b", 5))
        assert log.queued == 10

        answers, took = [], []

        def client() -> None:
            for i in range(20):
                start = time.perf_counter()
                answers.append(log.write(_records(f"c{i}", 1)))
                took.append(time.perf_counter() - start)

        thread = threading.Thread(target=client)
        thread.start()
        thread.join(10)
        # a write that waited for the stalled writer would still be waiting now
        assert not thread.is_alive()
        assert answers == [False] * 20
        assert min(took) < 0.05
        assert log.dropped == 20
    finally:
        gate.set()
    assert log.close()
    assert log.written == 10
    assert sorted(set(read_log(tmp_path).column("request_id").to_pylist())) == ["a", "b"]


def test_close_flushes_the_tail(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=10_000, flush_seconds=3600).start()
    for i in range(3):
        assert log.write(_records(f"r{i}", i + 1))
    assert list_segments(tmp_path) == []  # neither threshold reached yet
    assert log.queued == 6
    assert log.close()
    assert log.written == 6 and log.queued == 0
    assert read_log(tmp_path).num_rows == 6
    assert not log.write(_records("late", 1))  # closed: refused, counted
    assert log.dropped == 1


def test_segments_rotate_by_time_and_by_size(tmp_path):
    by_time = PredictionLog(tmp_path / "t", flush_rows=10_000, flush_seconds=0.05).start()
    by_time.write(_records("r", 1))
    _wait_for(lambda: len(list_segments(tmp_path / "t")) == 1)  # no close needed
    by_time.close()

    by_size = PredictionLog(tmp_path / "s", flush_rows=5, flush_seconds=3600).start()
    for i in range(23):
        by_size.write(_records(f"r{i}", 1))
    by_size.close()
    sizes = [pq.read_metadata(s.path).num_rows for s in list_segments(tmp_path / "s")]
    assert sum(sizes) == 23 and max(sizes) == 5


def test_a_requests_rows_stay_in_one_segment(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=4, flush_seconds=3600).start()
    for i in range(10):
        log.write(_records(f"r{i}", 3))
    log.close()
    for segment in list_segments(tmp_path):
        table = pq.read_table(segment.path)
        ids = table.column("request_id").to_pylist()
        assert all(ids.count(rid) == 3 for rid in set(ids))


_CHILD = r"""
import sys, time
from loopml.serve.predlog import PredictionLog
folder, prefix = sys.argv[1], sys.argv[2]
log = PredictionLog(folder, flush_rows=500, flush_seconds=0.02).start()
i = 0
while True:
    rows = 1 + i % 3
    recs = [{"request_id": f"{prefix}-{i}-{rows}", "row": r, "model": "m", "version": 1,
             "flavour": "native", "latency_ms": 0.5, "prediction": "yes",
             "probabilities": None, "inputs": {"i": i, "r": r, "text": "é" * 50}}
            for r in range(rows)]
    while not log.write(recs):
        time.sleep(0.001)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_leaves_only_complete_readable_segments(tmp_path):
    folder = tmp_path / "log"
    for run, delay in enumerate([0.02, 0.1, 0.2, 0.35, 0.6]):
        before = len(_parquet_files(folder)) if folder.exists() else 0
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), f"run{run}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda b=before: folder.exists() and len(_parquet_files(folder)) > b,
                      timeout=60)
            time.sleep(delay)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()

    files = _parquet_files(folder)
    assert all(".tmp" not in p.name for p in files)
    tables = [pq.read_table(p) for p in files]  # every visible segment reads, whole
    for table in tables:
        assert table.schema.equals(PREDICTION_SCHEMA)
    every = pa.concat_tables(tables)
    ids, rows = every.column("request_id").to_pylist(), every.column("row").to_pylist()
    keys = list(zip(ids, rows, strict=True))
    assert len(set(keys)) == len(keys)  # nothing written twice
    by_request: dict[str, set[int]] = {}
    for rid, row in keys:
        by_request.setdefault(rid, set()).add(row)
    for rid, got in by_request.items():  # every request whole: its rows share a segment
        assert got == set(range(int(rid.rsplit("-", 1)[1])))
    for inputs in every.column("inputs").to_pylist():
        assert json.loads(inputs)["text"] == "é" * 50
    assert {rid.split("-")[0] for rid in by_request} == {f"run{i}" for i in range(5)}
    assert read_log(folder).num_rows == every.num_rows

    # a new writer removes the temp files the killed ones left behind (none is locked now)
    PredictionLog(folder).start().close()
    assert not [p for p in folder.rglob("*.tmp")]


def test_torn_garbage_foreign_and_temp_files_are_skipped_and_reported(tmp_path, caplog):
    log = PredictionLog(tmp_path, flush_rows=3, flush_seconds=3600).start()
    log.write(_records("good", 6))
    log.close()
    [segment] = list_segments(tmp_path)
    day = Path(segment.path).parent
    later = segment.epoch_ms + 1
    data = Path(segment.path).read_bytes()
    torn = day / f"{later:013d}-1-abcdef-000001.parquet"
    torn.write_bytes(data[: len(data) // 2])
    garbage = day / "garbage.parquet"
    garbage.write_bytes(os.urandom(2000))
    noise = day / f"{later:013d}-1-abcdef-000002.parquet"
    noise.write_bytes(b"PAR1" + os.urandom(500) + b"PAR1")
    foreign = day / f"{later:013d}-1-abcdef-000003.parquet"
    pq.write_table(pa.table({"something": [1, 2]}), foreign)
    leftover = day / ".1-abcdef-000004.parquet.tmp"
    leftover.write_bytes(data[:100])

    skipped: list[tuple[str, str]] = []
    with caplog.at_level("WARNING", logger="loopml.serve.predlog"):
        table = read_log(tmp_path, skipped=skipped)
    assert table.num_rows == 6
    assert set(table.column("request_id").to_pylist()) == {"good"}
    assert {Path(p) for p, _ in skipped} == {torn, garbage, noise, foreign, leftover}
    assert "cannot be read" in caplog.text


def test_inputs_json_keeps_odd_names_and_unicode_nan_becomes_null(tmp_path):
    np = pytest.importorskip("numpy")
    odd = {"a b": 1, "ü/ñ.列": "日本語 ☃", "": None, 'q"uote\\': "line\nbreak",
           "x.y[0]": float("nan"), "inf": float("inf"), "-inf": -math.inf,
           "np_nan": np.float32("nan"), "np_int": np.int64(7), "np_bool": np.bool_(True),
           "arr": np.array([1.5, np.nan]), "when": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
           "\ud83d": "lone surrogate key"}
    expected = {"a b": 1, "ü/ñ.列": "日本語 ☃", "": None, 'q"uote\\': "line\nbreak",
                "x.y[0]": None, "inf": None, "-inf": None, "np_nan": None, "np_int": 7,
                "np_bool": True, "arr": [1.5, None], "when": "2024-05-01T12:00:00+00:00",
                "\ud83d": "lone surrogate key"}
    log = PredictionLog(tmp_path, flush_seconds=0.01).start()
    log.write([{**_records("r", 1)[0], "inputs": odd, "prediction": float("nan")}])
    log.write([{**_records("s", 1)[0], "prediction": "yes", "probabilities": np.array([0.5, 0.5]),
                "inputs": {"ok": "ünï"}}])
    assert log.close()
    table = read_log(tmp_path).to_pylist()
    by_id = {r["request_id"]: r for r in table}
    assert json.loads(by_id["r"]["inputs"]) == expected
    assert by_id["r"]["prediction"] == "null"
    assert by_id["s"]["prediction"] == '"yes"'
    assert by_id["s"]["inputs"] == '{"ok":"ünï"}'  # readable unicode when it can be
    assert by_id["s"]["probabilities"] == [0.5, 0.5]
    assert to_json({"k": [1, float("-inf")]}) == '{"k":[1,null]}'


def test_bad_records_are_rejected_alone(tmp_path):
    good = _records("good", 2)
    bad = [{k: v for k, v in good[0].items() if k != "model"},  # missing field
           {**good[0], "request_id": "x", "row": "not a number"},
           {**good[0], "request_id": "y", "row": 2**70},  # beyond int64
           {**good[0], "request_id": "z", "inputs": [1, 2]},  # not a mapping
           {**good[0], "request_id": "\ud800"}]  # not storable as UTF-8
    log = PredictionLog(tmp_path, flush_seconds=0.01).start()
    log.write(good + bad)
    assert log.close()
    assert log.rejected == 5 and log.written == 2
    assert read_log(tmp_path).column("request_id").to_pylist() == ["good", "good"]


def test_ts_since_until_and_feedback(tmp_path):
    np = pytest.importorskip("numpy")
    log = PredictionLog(tmp_path, kind="feedback", flush_seconds=0.01).start()
    log.write([{"request_id": "a", "row": None, "ts": 1000.0, "label": "yes"},
               {"request_id": "b", "row": 1, "ts": datetime(1970, 1, 1, 0, 33, 20),  # 2000 s
                "label": 3.5},
               {"request_id": "c", "row": 0, "ts": datetime.fromtimestamp(3000, UTC),
                "label": None},
               {"request_id": "d", "label": [1, 2]},  # no ts: the time of write
               {"request_id": "e", "row": np.int64(2), "ts": np.datetime64("1970-01-01T00:40"),
                "label": np.float64(0.5)}])
    assert log.close()
    table = read_log(tmp_path, kind="feedback")
    assert table.schema.equals(FEEDBACK_SCHEMA)
    rows = {r["request_id"]: r for r in table.to_pylist()}
    assert rows["a"]["row"] is None and rows["a"]["label"] == '"yes"'
    assert rows["b"]["ts"] == datetime(1970, 1, 1, 0, 33, 20, tzinfo=UTC)
    assert rows["c"]["label"] == "null" and rows["d"]["label"] == "[1,2]"
    assert abs(rows["d"]["ts"] - datetime.now(UTC)) < timedelta(minutes=5)
    assert rows["e"]["ts"] == datetime.fromtimestamp(2400, UTC)
    assert rows["e"]["row"] == 2 and rows["e"]["label"] == "0.5"

    window = read_log(tmp_path, kind="feedback", since=1500, until=3000)
    assert sorted(window.column("request_id").to_pylist()) == ["b", "e"]
    assert read_log(tmp_path, kind="feedback",
                    since=datetime.now(UTC) + timedelta(days=2)).num_rows == 0
    assert read_log(tmp_path).num_rows == 0  # no predictions logged


def test_segments_after_a_cursor(tmp_path):
    log = PredictionLog(tmp_path, flush_rows=2, flush_seconds=3600).start()
    for i in range(6):
        log.write(_records(f"r{i}", 1))
    log.close()
    every = segments_after(tmp_path, None, settle_seconds=0)
    assert len(every) == 3
    assert [s.name for s in every] == sorted(s.name for s in every)
    assert segments_after(tmp_path, every[0].name, settle_seconds=0) == every[1:]
    assert segments_after(tmp_path, every[-1].name, settle_seconds=0) == []
    assert segments_after(tmp_path, None, settle_seconds=3600) == []  # too young yet
    assert segments_after(tmp_path / "nothing", None) == []


def test_fsspec_memory_url(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    url = f"memory://predlog-{uuid.uuid4().hex}"
    try:
        log = PredictionLog(url, flush_rows=3, flush_seconds=3600).start()
        log.write(_records("m", 7))
        assert log.close()
        assert len(list_segments(url)) == 1
        assert read_log(url).num_rows == 7
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists(url):
            fs.rm(url, recursive=True)


@pytest.mark.parametrize("settings", [{"kind": "logs"}, {"flush_rows": 0},
                                      {"queue_rows": -1}, {"flush_seconds": 0}])
def test_bad_settings_are_refused_at_start(tmp_path, settings):
    with pytest.raises(InvalidInput, match=next(iter(settings))):
        PredictionLog(tmp_path, **settings).start()


class _FailingLog(PredictionLog):
    """A log whose segment writes fail ``failures`` times (forever if None), then succeed."""

    def __init__(self, folder, *, failures: int | None, **kw):
        super().__init__(folder, **kw)
        self.failures = failures
        self.calls = 0

    def _write_segment(self, table: pa.Table) -> str:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise OSError(28, "No space left on device")
        return super()._write_segment(table)


def test_a_failed_segment_write_is_retried_without_duplicates(tmp_path):
    log = _FailingLog(tmp_path, failures=2, flush_rows=4, flush_seconds=3600).start()
    log.write(_records("a", 4))
    _wait_for(lambda: log.written == 4)
    assert log.calls == 3 and log.last_error is None
    log.write(_records("b", 2))
    assert log.close()
    table = read_log(tmp_path)
    assert sorted(table.column("request_id").to_pylist()) == ["a"] * 4 + ["b"] * 2


def test_close_gives_up_on_a_broken_folder_and_says_so(tmp_path, caplog):
    log = _FailingLog(tmp_path, failures=None, flush_rows=2, flush_seconds=3600).start()
    log.write(_records("a", 3))
    with caplog.at_level("ERROR", logger="loopml.serve.predlog"):
        assert not log.close(timeout=0.3)
    assert log.dropped == 3 and log.written == 0 and log.queued == 0
    assert "No space left" in log.last_error
    assert "3 rows unwritten" in caplog.text


def test_reader_bounds_must_be_times(tmp_path):
    with pytest.raises(InvalidInput, match="since"):
        read_log(tmp_path, since="yesterday")
    assert read_log(tmp_path, since=1e15).num_rows == 0  # beyond year 9999: nothing, no crash


def test_a_folder_removed_under_the_writer_is_made_again(tmp_path):
    import shutil

    log = PredictionLog(tmp_path / "log", flush_rows=2, flush_seconds=3600).start()
    log.write(_records("a", 2))
    _wait_for(lambda: log.written == 2)
    shutil.rmtree(tmp_path / "log")  # e.g. an over-eager retention job
    log.write(_records("b", 2))
    assert log.close()
    assert read_log(tmp_path / "log").column("request_id").to_pylist() == ["b", "b"]
