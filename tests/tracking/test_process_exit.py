"""What a script that exits with a run still open leaves in the store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from loopml.store import Store

_SCRIPT = textwrap.dedent(
    """
    import sys
    import loopml

    run = loopml.start_run("script", project="exit")   # no `with`: left open on purpose
    print(run.id, flush=True)
    for step in range(3000):
        run.log_metric("loss", 1.0 / (step + 1))
    if sys.argv[1] == "raise":
        raise RuntimeError("training diverged")
    if sys.argv[1] == "interrupt":
        raise KeyboardInterrupt
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "status", "error"),
    [
        ("normal", "FINISHED", None),
        ("raise", "FAILED", "RuntimeError: training diverged"),
        ("interrupt", "KILLED", "interrupted (KeyboardInterrupt)"),
    ],
)
def test_open_run_is_flushed_and_closed_at_exit(tmp_path, how, status, error):
    env = {**os.environ, "LOOPML_HOME": str(tmp_path / "ws")}
    env.pop("LOOPML_STORE_URI", None)
    result = subprocess.run([sys.executable, "-c", _SCRIPT, how], env=env, text=True,
                            capture_output=True, timeout=120)
    run_id = result.stdout.strip()
    store = Store(f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}").connect()
    record = store.runs.get(run_id)
    assert (record.status, record.error) == (status, error)
    assert store.metrics.count(run_id) == 3000
