"""The real server under load: every request logged exactly once, a hot swap that fails nothing,
and a log that stays readable when the server is killed.

Each test starts ``python -m loopml serve`` as a subprocess on a free loopback port and drives
it with 64 keep-alive connections (server_helpers.LoadGenerator). ``LOOPML_LOAD_SECONDS``
shortens the long run for local work; its default is the 60 s the issue asks for.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from server_helpers import (
    LoadGenerator,
    credit_workspace,
    input_columns,
    move_champion,
    start_server,
    valid_records,
)

from loopml.serve.predlog import read_log

pytestmark = pytest.mark.slow

CONNECTIONS = 64
PREDICT = "/v1/models/credit/predict"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with credit@1 and credit@2; credit@champion points at 1."""
    return credit_workspace(tmp_path_factory.mktemp("load"), versions=2)


@pytest.fixture(scope="module")
def bodies(home: Path) -> list[bytes]:
    """Request bodies of one valid row each, in the signature's ranges."""
    records = valid_records(input_columns(home), 97, seed=11)
    return [json.dumps([record]).encode() for record in records]


def _logged(folder: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    skipped: list[tuple[str, str]] = []
    table = read_log(folder, kind="predictions", skipped=skipped)
    rows = table.select(["request_id", "row", "version"]).to_pylist()
    return rows, skipped


def test_load_across_a_hot_swap_fails_nothing_and_logs_every_request_once(home, bodies,
                                                                          tmp_path):
    """60 s at 64 connections following credit@champion; the alias moves to 2 at a third of it.

    Nothing fails, and the log holds each answered request exactly once, with the version
    that answered it; both versions answer.
    """
    # At least 10 s: the alias moves at a third of the run and the server polls every 2 s.
    seconds = max(10.0, float(os.environ.get("LOOPML_LOAD_SECONDS", "60")))
    log_dir = tmp_path / "log"
    server = start_server(home, "credit@champion", log_dir=log_dir)
    try:
        load = LoadGenerator(server.port, PREDICT, bodies, connections=CONNECTIONS,
                             seconds=seconds).start()
        time.sleep(seconds / 3)
        move_champion(home, 2, expected=1)  # the server polls the alias every 2 s
        result = load.join()
    finally:
        code = server.stop(signal.SIGTERM)  # graceful: the log is flushed and closed
    # uvicorn shuts down, then raises the signal it caught again: the exit is by SIGTERM.
    assert code in (0, -signal.SIGTERM), server.log()

    print(f"{len(result.replies)} requests in {result.seconds:.1f} s at c={CONNECTIONS}")
    assert result.failures == [] and result.in_flight == [], result.failures[:5]
    statuses = Counter(r.status for r in result.replies)
    assert set(statuses) == {200}, (statuses, [r.error for r in result.replies
                                               if r.status != 200][:5])
    answered = {r.request_id: r for r in result.replies}
    assert len(answered) == len(result.replies) > CONNECTIONS  # ids are unique
    assert all(r.rows == 1 for r in result.replies)
    assert {r.version for r in result.replies} == {1, 2}

    rows, skipped = _logged(log_dir)
    assert skipped == []
    per_request = Counter(row["request_id"] for row in rows)
    assert set(per_request) == set(answered)  # nothing lost, nothing made up
    assert max(per_request.values()) == 1  # exactly once (one row a request)
    assert all(row["row"] == 0 for row in rows)
    wrong = [(row["request_id"], row["version"], answered[row["request_id"]].version)
             for row in rows if row["version"] != answered[row["request_id"]].version]
    assert wrong == []
    assert {row["version"] for row in rows} == {1, 2}
    leftovers = [p for p in log_dir.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_server_killed_mid_load_leaves_only_readable_segments(home, bodies, tmp_path):
    """SIGKILL during load: every segment left reads, no request twice, none made up."""
    import pyarrow.parquet as pq

    log_dir = tmp_path / "log"
    server = start_server(home, "credit@1", log_dir=log_dir)
    load = LoadGenerator(server.port, PREDICT, bodies, connections=CONNECTIONS,
                         seconds=8.0).start()
    try:
        # Kill once the log has had time to publish a few segments (it flushes every second).
        deadline = time.monotonic() + 30
        while load.replies_so_far() < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3.0)
    finally:
        server.stop(signal.SIGKILL)
    load.stop()
    result = load.join()

    print(f"{len(result.replies)} answered, {len(result.in_flight)} cut off by the kill")
    assert result.replies, result.failures[:5]
    assert {r.status for r in result.replies} == {200}
    answered = {r.request_id for r in result.replies}

    segments = sorted(p for p in log_dir.rglob("*") if p.is_file()
                      and p.name.endswith(".parquet"))
    assert segments, "the server published no segment before it was killed"
    for path in segments:  # readable on their own, not only through read_log
        pq.read_table(path)
    rows, skipped = _logged(log_dir)
    torn = [(path, why) for path, why in skipped if not path.endswith(".tmp")]
    assert torn == []
    per_request = Counter(row["request_id"] for row in rows)
    assert per_request and max(per_request.values()) == 1
    # A request the server logged but whose answer the kill cut off is one the client had in
    # flight; the server makes its own ids, so only their number can be checked.
    unexplained = set(per_request) - answered - set(result.in_flight)
    print(f"{len(per_request)} logged, {len(unexplained)} of them cut off")
    assert len(unexplained) <= len(result.in_flight), (len(unexplained), len(result.in_flight))


def test_a_bad_row_fails_only_its_own_request_not_the_batch_it_joins(home, bodies, tmp_path):
    """Valid requests under load stay 200 while another client sends a row the model refuses."""
    from server_helpers import http_request

    server = start_server(home, "credit@1", log_dir=tmp_path / "log")
    bad_statuses: Counter[int] = Counter()
    try:
        load = LoadGenerator(server.port, PREDICT, bodies, connections=16, seconds=4.0).start()
        record = json.loads(bodies[0])[0]
        name = next(k for k, v in record.items() if isinstance(v, float))
        bad = json.dumps([{**record, name: 1.5}]).replace("1.5", "1e400").encode()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            status, _ = http_request("POST", server.port, PREDICT, bad)
            bad_statuses[status] += 1
        result = load.join()
    finally:
        server.stop()
    statuses = Counter(r.status for r in result.replies)
    print(f"valid requests: {dict(statuses)}; bad requests: {dict(bad_statuses)}")
    assert result.replies and set(statuses) == {200}, statuses
