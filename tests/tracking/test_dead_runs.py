"""A RUNNING run whose process is gone (SIGKILL) is marked KILLED by any listing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from loopml.store import Store
from loopml.store.processes import process_gone

_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import loopml

    run = loopml.start_run("doomed", project="kill")
    run.log_metric("loss", 1.0)
    run.flush()
    print(run.id, flush=True)
    time.sleep(600)
    """
)


def _start(home: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    return proc, run_id


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_sigkilled_run_is_marked_killed_by_listings(tmp_path, reaped):
    proc, run_id = _start(tmp_path / "ws")
    store = Store(f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}").connect()
    try:
        assert store.runs.list()[0].status == "RUNNING"  # alive: left alone
        assert store.runs.get(run_id).status == "RUNNING"
        proc.send_signal(signal.SIGKILL)
        if reaped:
            proc.wait()
        else:
            time.sleep(0.5)  # killed but not waited for: a zombie
        [record] = store.runs.list()
        assert record.status == "KILLED" and record.end_time is not None
        assert record.error.startswith(f"process gone (pid {proc.pid} on ")
        assert store.metrics.count(run_id) == 1  # what was logged before the kill is kept
        assert store.runs.detail(run_id).run.status == "KILLED"
    finally:
        proc.kill()
        proc.wait()


def test_cli_listing_marks_a_killed_run(tmp_path):
    proc, run_id = _start(tmp_path / "ws")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    result = subprocess.run([sys.executable, "-m", "loopml", "runs", "list", "--json", "--home",
                             str(tmp_path / "ws")], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"status": "KILLED"' in result.stdout and "process gone" in result.stdout


def test_only_runs_of_this_host_with_a_dead_process_are_marked(store):
    from sqlalchemy import update

    from loopml.store.schema import Run

    store.runs.create(project="p", name="live")  # this process
    elsewhere = store.runs.create(project="p", name="elsewhere")
    reused = store.runs.create(project="p", name="reused")
    finished = store.runs.create(project="p", name="finished")
    store.runs.finish(finished.id, status="FINISHED")
    sleeper = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        with store.write() as conn:
            # A run of another machine whose pid means nothing here.
            conn.execute(update(Run).where(Run.id == elsewhere.id)
                         .values(host="another-host", pid=dead.pid))
            # A pid now held by a process that started after the run: the pid was reused.
            conn.execute(update(Run).where(Run.id == reused.id).values(
                pid=sleeper.pid, start_time=reused.start_time - timedelta(hours=1)))
        assert store.runs.mark_gone() == [reused.id]
        statuses = {r.name: r.status for r in store.runs.list()}
        assert statuses == {"live": "RUNNING", "elsewhere": "RUNNING", "reused": "KILLED",
                            "finished": "FINISHED"}
        assert store.runs.mark_gone() == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_process_gone_reference_cases():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_gone(child.pid)
    assert not process_gone(os.getpid())
    assert not process_gone(1)  # init: another user's process counts as alive
    assert not process_gone(None)


def _refusing_writes(store: Store, url: str) -> Store:
    """Return a store on the same data whose writes fail, as on a read-only replica."""
    if url.startswith("sqlite"):
        with store.write() as conn:
            conn.exec_driver_sql("CREATE TRIGGER replica BEFORE UPDATE ON runs BEGIN "
                                 "SELECT RAISE(ABORT, 'read-only replica'); END")
        return store
    # PostgreSQL: every transaction of this session is read-only, as on a hot standby.
    return Store(url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20",
                             1)).connect(create=False)


def test_a_store_that_refuses_writes_still_lists(store, store_url):
    from sqlalchemy import update

    from loopml.errors import StoreError
    from loopml.store.schema import Run

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = store.runs.create(project="p", name="dead")
    with store.write() as conn:
        conn.execute(update(Run).where(Run.id == run.id).values(pid=dead.pid))
    replica = _refusing_writes(store, store_url)
    with pytest.raises(StoreError):
        replica.runs.finish(run.id, status="KILLED")  # writes really are refused
    assert replica.runs.mark_gone() == []
    assert [(r.name, r.status) for r in replica.runs.list()] == [("dead", "RUNNING")]
    assert replica.runs.detail(run.id).run.status == "RUNNING"
