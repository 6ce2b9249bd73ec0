"""`loopml monitor` and `loopml alerts` as a user runs them: reports, exit codes, --follow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from monitor_helpers import DAY1, DAY2, log_period

from loopml_cli import run_loopml


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_monitor_writes_the_report_and_lists_alerts(home, tmp_path):
    log = home / "predictions"  # the default prediction log of the workspace
    log_period(home, log, when=DAY1, seed=61)
    log_period(home, log, when=DAY2, seed=62, shift=1.5, concept=1.0)
    out = tmp_path / "reports"
    done = run_loopml("monitor", "credit@champion", "--window", "1d", "--settle", "0",
                      "--out", str(out), "--json", home=home)
    assert done.returncode == 0, done.stderr
    report = _strict(done.stdout)
    assert [w["rows"] for w in report["windows"]] == [1000, 1000]
    assert report["served_version"] == 1
    html = (out / "monitor-credit-1d.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html
    assert _strict((out / "monitor-credit-1d.json").read_text())["model"] == "credit"

    again = run_loopml("monitor", "credit", "--window", "1d", "--settle", "0", "--out",
                       str(out), home=home)
    assert again.returncode == 0 and "read 0 new rows" in again.stdout  # nothing re-read

    alerts = _strict(run_loopml("alerts", "list", "--json", home=home).stdout)
    assert {"drift", "performance"} <= {a["kind"] for a in alerts}
    drift_only = _strict(run_loopml("alerts", "list", "--kind", "drift", "--json",
                                    home=home).stdout)
    assert {a["kind"] for a in drift_only} == {"drift"}
    table = run_loopml("alerts", "list", home=home)
    assert table.returncode == 0 and "drift" in table.stdout


@pytest.mark.parametrize(("args", "says"), [
    (("credit", "--window", "1x"), "window"),
    (("nobody@champion",), "nobody"),
    (("credit", "--since", "yesterday-ish"), "--since"),
    (("credit", "--retrain"), "project file"),
])
def test_bad_input_is_one_line_and_exit_code_2(home, tmp_path, args, says):
    done = run_loopml("monitor", *args, "--settle", "0", "--out", str(tmp_path), home=home,
                      cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def _windows(home: Path) -> list[int]:
    from loopml.store import Store

    store = Store(f"sqlite:///{home / 'loopml.db'}").connect()
    return [w.rows for w in store.monitoring.windows("credit", "1d")]


def test_follow_survives_stops_and_kills_without_counting_twice(home, tmp_path):
    log = home / "predictions"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    command = [sys.executable, "-m", "loopml", "monitor", "credit", "--follow", "--interval",
               "0.3", "--window", "1d", "--settle", "0", "--out", str(tmp_path / "r")]

    def follower() -> subprocess.Popen:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def wait_for(rows: int) -> None:
        deadline = time.time() + 90
        while time.time() < deadline:
            if sum(_windows(home) or [0]) >= rows:
                return
            time.sleep(0.3)
        raise AssertionError(f"the follower did not reach {rows} rows: {_windows(home)}")

    running = follower()
    try:
        log_period(home, log, when=DAY1, seed=71, rows=800, labels=False)
        wait_for(800)
        log_period(home, log, when=DAY1, seed=72, rows=400, labels=False)
        wait_for(1200)
    finally:
        running.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    assert "carries on from the stored cursor" in out

    log_period(home, log, when=DAY1, seed=73, rows=1200, labels=False)  # 3 segments
    killed = follower()
    time.sleep(1.5)
    killed.kill()  # SIGKILL, wherever it was
    killed.communicate(timeout=60)
    restarted = run_loopml("monitor", "credit", "--window", "1d", "--settle", "0", "--out",
                           str(tmp_path / "r"), home=home)
    assert restarted.returncode == 0, restarted.stderr
    assert _windows(home) == [2400]  # every row once, however the passes ended
