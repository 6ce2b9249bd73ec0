"""Many processes writing one store at once, and processes killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore
from loopml.store import Store

WRITERS = 8
SECONDS = 4.0


def _value(writer: int, step: int) -> float:
    return writer * 1_000_000 + step + 0.5


def _log_for_a_while(store_url: str, artifacts_uri: str, writer: int, start_at: float) -> dict:
    """One writer process: log points in small batches until the deadline; report what it sent."""
    from loopml.tracking import TrackingClient

    store = Store(store_url).connect()
    client = TrackingClient(store, ArtifactStore(artifacts_uri).connect(),
                            batch_size=200, flush_interval_s=0.05)
    while time.time() < start_at:
        time.sleep(0.005)
    began = time.time()
    deadline = began + SECONDS
    with client.start_run(f"writer-{writer}", project="concurrency") as run:
        run.log_params({"writer": writer})
        step = 0
        while time.time() < deadline:
            run.log_metric("value", _value(writer, step), step=step)
            step += 1
            if step % 500 == 0:
                run.set_tag("progress", step)
                time.sleep(0.001)  # let the other writers in, as a training step would
    client.close()
    return {"run_id": run.id, "points": step, "began": began, "ended": time.time()}


@pytest.mark.slow
def test_eight_processes_log_concurrently_and_every_point_lands(store_url, tmp_path):
    Store(store_url).connect()  # create the schema once, as the first user would
    start_at = time.time() + 4.0  # all writers begin together, after interpreter start-up
    with ProcessPoolExecutor(WRITERS, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_log_for_a_while, store_url, str(tmp_path / "art"), w, start_at)
            for w in range(WRITERS)
        ]
        reports = [f.result(timeout=120) for f in futures]

    # The writers really overlapped in time.
    assert max(r["began"] for r in reports) < min(r["ended"] for r in reports)
    store = Store(store_url).connect()
    assert len(store.runs.list(project="concurrency")) == WRITERS
    total = 0
    for writer, report in enumerate(reports):
        assert report["points"] > 100
        history = store.metrics.history(report["run_id"], "value")
        assert len(history) == report["points"]
        assert [p.step for p in history] == list(range(report["points"]))
        assert all(p.value == _value(writer, p.step) for p in history)
        detail = store.runs.detail(report["run_id"])
        assert detail.run.status == "FINISHED" and detail.params == {"writer": str(writer)}
        assert detail.metrics["value"].step == report["points"] - 1
        total += report["points"]
    assert total > WRITERS * 100


_VICTIM = textwrap.dedent(
    """
    import sys, time
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store
    from loopml.tracking import TrackingClient

    store = Store(sys.argv[1]).connect()
    artifacts = ArtifactStore(sys.argv[2]).connect()
    client = TrackingClient(store, artifacts, batch_size=50, flush_interval_s=0.01)
    run = client.start_run("victim", project="crash")
    print(run.id, flush=True)
    for step in range(5000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    print("flushed", flush=True)

    def slow_chunks():
        for _ in range(1000):
            yield b"x" * 65536
            print("chunk", flush=True)
            time.sleep(0.01)

    artifacts.put_chunks(slow_chunks())
    """
)


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_readable_store_and_no_half_artifact(store_url, tmp_path):
    art = tmp_path / "art"
    proc = subprocess.Popen(
        [sys.executable, "-c", _VICTIM, store_url, str(art)],
        stdout=subprocess.PIPE, text=True,
    )
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "flushed"
    for _ in range(3):  # the artifact write is under way
        assert proc.stdout.readline().strip() == "chunk"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    store = Store(store_url).connect()
    if store.backend == "sqlite":
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    record = store.runs.get(run_id)
    assert record.status == "RUNNING"  # nobody could mark it; the record is intact
    assert store.metrics.count(run_id) == 5000
    assert store.runs.detail(run_id).metrics["loss"].step == 4999

    blobs = ArtifactStore(str(art)).connect()
    published = [p for p in Path(blobs.root, "objects").rglob("*") if p.is_file()]
    assert published == []  # the half-written bytes are only ever under tmp/
    assert store.artifacts.list(run_id) == []


_STEADY_WRITER = textwrap.dedent(
    """
    import sys
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store
    from loopml.tracking import TrackingClient

    store = Store(sys.argv[1]).connect()
    client = TrackingClient(store, ArtifactStore(sys.argv[2]).connect(), batch_size=100,
                            flush_interval_s=0.01)
    run = client.start_run("victim", project="crash")
    print(run.id, flush=True)
    step = 0
    while True:
        run.log_metric("loss", float(step), step=step)
        step += 1
    """
)


@pytest.mark.slow
def test_sigkill_during_metric_flushes_keeps_each_batch_whole(sqlite_url, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _STEADY_WRITER, sqlite_url, str(tmp_path / "art")],
        stdout=subprocess.PIPE, text=True,
    )
    run_id = proc.stdout.readline().strip()
    store = Store(sqlite_url).connect()
    deadline = time.monotonic() + 30
    while store.metrics.count(run_id) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    count = store.metrics.count(run_id)
    assert count >= 2000
    steps = [p.step for p in store.metrics.history(run_id, "loss")]
    assert steps == list(range(count))  # a gap-free prefix: no batch was half written
    # metrics and latest_metrics are written in one transaction, so they agree.
    assert store.runs.detail(run_id).metrics["loss"].step == count - 1
