"""Two writers move one alias at the same moment: one wins, the other is refused and recorded.

Each round starts two processes that compare against the same version of the alias (the
``expected`` of a compare-and-set), waits until both are ready, and releases them together.
Afterwards the alias points at one of them, every attempt is in the history, the moves form
an unbroken chain, and the loser got a ConstraintError and a refused event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from registry_helpers import train, workspace_at, write_credit

from loopml.config import ProjectConfig
from loopml.store import Store
from loopml.store.models import AliasEventRecord

ROUNDS = 4
VERSIONS = 5

# Waits for a start time on stdin once its imports and connection are ready, then moves.
_MOVER = textwrap.dedent("""
    import json, sys, time
    from loopml.errors import ConstraintError
    from loopml.store import Store

    url, version, expected, actor = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    expected = None if expected == "none" else int(expected)
    models = Store(url).connect().models
    models.aliases("m")  # a connection is open before the start
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.0005)
    try:
        event = models.move_alias("m", "champion", version, expected=expected, actor=actor,
                                  reason=f"attempt of {actor}", outcome="moved")
        print(json.dumps({"result": event.outcome, "from": event.from_version}), flush=True)
    except ConstraintError as exc:
        print(json.dumps({"result": "conflict", "error": str(exc)}), flush=True)
""")

# The real `loopml` command, its modules imported before the shared start.
_PROMOTER = textwrap.dedent("""
    import sys, time
    sys.argv = ["loopml", *sys.argv[1:]]
    import loopml.cli, loopml.cli.models, loopml.registry.promote, loopml.registry.gates
    import loopml.registry.compare, loopml.views.gates, loopml.evaluate.card
    import sklearn.linear_model, pandas
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.0005)
    loopml.cli.main()
""")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["COLUMNS"] = "250"
    env.update(extra)
    return env


def _race(commands: list[list[str]], envs: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """Start the commands, release them together once all are ready; return (rc, out, err)."""
    procs = [subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for command, env in zip(commands, envs, strict=True)]
    try:
        for proc in procs:
            ready = proc.stdout.readline()
            assert ready.strip() == "ready", proc.stderr.read()
        start_at = time.time() + 0.3
        for proc in procs:
            proc.stdin.write(f"{start_at}\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check_chain(history: list[AliasEventRecord]) -> int | None:
    """Assert each move starts where the previous one ended; return where the last one ended."""
    at = None
    for event in history:
        if event.outcome in ("moved", "forced"):
            assert event.from_version == at, history
            at = event.to_version
    return at


def _add_versions(store_url: str, count: int) -> None:
    models = Store(store_url).connect().models
    for number in range(1, count + 1):
        record, created = models.add_version(
            "m", source="run", run_id=f"{number:032x}", task="binary", native_sha256=None,
            native_size=None, signature={"inputs": []}, lineage={}, metrics={},
            created_by="tester")
        assert created and record.version == number


@pytest.mark.slow
def test_two_processes_move_one_alias_with_the_same_expected_version(store_url):
    _add_versions(store_url, VERSIONS)
    current: int | None = None
    attempts = []
    for round_ in range(ROUNDS):
        others = [v for v in range(1, VERSIONS + 1) if v != current]
        candidates = [others[round_ % len(others)], others[(round_ + 1) % len(others)]]
        actors = [f"round{round_}-writer{i}" for i in range(2)]
        expected = "none" if current is None else str(current)
        results = _race(
            [[sys.executable, "-c", _MOVER, store_url, str(v), expected, actor]
             for v, actor in zip(candidates, actors, strict=True)],
            [_environment()] * 2)
        assert all(rc == 0 for rc, _, _ in results), results
        outcomes = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
        assert sorted(o["result"] for o in outcomes) == ["conflict", "moved"], outcomes
        winner = next(i for i, o in enumerate(outcomes) if o["result"] == "moved")
        loser = 1 - winner
        assert outcomes[winner]["from"] == current
        assert "by someone else" in outcomes[loser]["error"]
        assert f"moved to version {candidates[winner]}" in outcomes[loser]["error"]
        attempts.append({"moved": (actors[winner], candidates[winner]),
                         "refused": (actors[loser], candidates[loser]), "from": current})
        current = candidates[winner]
        assert Store(store_url).connect().models.aliases("m") == {"champion": current}

    history = Store(store_url).connect().models.history("m")
    assert len(history) == 2 * ROUNDS  # every attempt, and nothing else
    assert _check_chain(history) == current
    recorded = {(e.actor, e.to_version): e for e in history}
    for attempt in attempts:
        moved = recorded[attempt["moved"]]
        refused = recorded[attempt["refused"]]
        assert moved.outcome == "moved" and moved.from_version == attempt["from"]
        # the loser saw the winner's move: that is where the alias was when it was refused
        assert refused.outcome == "refused" and refused.from_version == attempt["moved"][1]
        assert refused.id > moved.id
        assert "nothing moved" in refused.reason


_REGISTRAR = textwrap.dedent("""
    import json, sys, time
    from loopml.store import Store

    url, runs, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    models = Store(url).connect().models
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.0005)
    numbers = []
    for i in range(count):
        record, created = models.add_version(
            "fresh", source="run", run_id=f"{runs}-{i}", task="binary", native_sha256=None,
            native_size=None, signature={}, lineage={}, metrics={}, created_by=runs)
        numbers.append([record.version, created])
    print(json.dumps(numbers), flush=True)
""")


def test_two_processes_registering_at_once_never_share_a_version_number(store_url):
    Store(store_url).connect()  # the schema exists; the model "fresh" does not yet
    count = 15
    results = _race([[sys.executable, "-c", _REGISTRAR, store_url, f"w{i}", str(count)]
                     for i in range(2)], [_environment()] * 2)
    assert all(rc == 0 for rc, _, _ in results), results
    numbers = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    assert all(created for part in numbers for _, created in part)
    taken = sorted(n for part in numbers for n, _ in part)
    assert taken == list(range(1, 2 * count + 1))
    for part in numbers:  # each writer's versions increase
        assert [n for n, _ in part] == sorted(n for n, _ in part)
    stored = Store(store_url).connect().models.versions("fresh")
    assert sorted(v.run_id for v in stored) == sorted(
        f"w{i}-{j}" for i in range(2) for j in range(count))


def test_two_processes_registering_the_same_runs_get_one_version_each(store_url):
    Store(store_url).connect()
    count = 15
    results = _race([[sys.executable, "-c", _REGISTRAR, store_url, "same", str(count)]
                     for _ in range(2)], [_environment()] * 2)
    assert all(rc == 0 for rc, _, _ in results), results
    first, second = (json.loads(out.strip().splitlines()[-1]) for _, out, _ in results)
    assert [n for n, _ in first] == [n for n, _ in second]  # the same number for a run
    assert sorted(n for n, _ in first) == list(range(1, count + 1))
    assert all(a != b for (_, a), (_, b) in zip(first, second, strict=True))  # one created it
    assert len(Store(store_url).connect().models.versions("fresh")) == count


# --- the same with two `loopml models promote` commands ------------------------------------


def _project(folder: Path) -> Path:
    """Write a loopml.yaml whose gates pass for any version (no champion comparison)."""
    settings = {
        "project": {"name": "credit"},
        "data": {"dataset": "credit", "source": str(write_credit(folder / "credit.csv")),
                 "target": "default", "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": {"candidates": ["logistic"], "trials": 2, "n_jobs": 1, "seed": 5,
                  "cv_folds": 3},
        "gates": {"beats_champion": None},
    }
    path = folder / "loopml.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.slow
def test_two_promote_commands_race_for_the_champion(store_url, tmp_path):
    from loopml.config import load_config

    config_path = _project(tmp_path / "project")
    config = load_config(config_path)
    assert isinstance(config, ProjectConfig) and config.gates.beats_champion is None
    workspace = workspace_at(tmp_path / "ws", store_url)
    first = train(config, workspace, project_dir=tmp_path).version
    # Versions 2 and 3: the same model again (one training per backend keeps this short).
    models = Store(store_url).connect().models
    for number in (2, 3):
        record, _ = models.add_version(
            "credit", source="run", run_id=None, task=first.task,
            native_sha256=first.native_sha256, native_size=first.native_size,
            signature=first.signature, lineage=first.lineage, metrics=first.metrics,
            created_by="tester", card_sha256=first.card_sha256)
        assert record.version == number

    current: int | None = None
    attempts = []
    for round_, candidates in enumerate([(1, 2), (3, None)]):
        if candidates[1] is None:  # the second round: the version that lost, and version 3
            candidates = (candidates[0], next(v for v in (1, 2) if v != current))
        actors = [f"promoter{round_}-{i}" for i in range(2)]
        results = _race(
            [[sys.executable, "-c", _PROMOTER, "models", "promote", "credit", str(v), "--to",
              "champion", "--config", str(config_path), "--json"] for v in candidates],
            [_environment(LOOPML_HOME=str(workspace.home), LOOPML_STORE_URI=store_url,
                          LOOPML_ACTOR=actor) for actor in actors])
        codes = [rc for rc, _, _ in results]
        assert sorted(codes) == [0, 2], results
        winner, loser = codes.index(0), codes.index(2)
        shown = json.loads(results[winner][1])
        assert shown["moved"] and shown["outcome"] == "moved"
        assert shown["from_version"] == current and shown["to_version"] == candidates[winner]
        assert all(g["passed"] for g in shown["report"]["gates"])
        errors = [x for x in results[loser][2].splitlines() if x.strip()]
        assert len(errors) == 1 and errors[0].startswith("loopml: error:"), results[loser]
        assert "by someone else" in errors[0]
        attempts.append({"moved": (actors[winner], candidates[winner]),
                         "refused": (actors[loser], candidates[loser]), "from": current})
        current = candidates[winner]
        assert Store(store_url).connect().models.aliases("credit") == {"champion": current}

    history = Store(store_url).connect().models.history("credit")
    assert len(history) == 2 * len(attempts)
    assert _check_chain(history) == current
    recorded = {(e.actor, e.to_version): e for e in history}
    for attempt in attempts:
        moved, refused = recorded[attempt["moved"]], recorded[attempt["refused"]]
        assert moved.outcome == "moved" and moved.from_version == attempt["from"]
        assert moved.report is not None  # the gate report travels with the move
        assert refused.outcome == "refused" and refused.from_version == attempt["moved"][1]
        assert refused.report is not None and refused.id > moved.id
