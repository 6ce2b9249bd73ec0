"""Read commands never create a workspace: a mistyped --home is an error, not a new database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.errors import StoreUnavailable
from loopml.tracking import TrackingClient
from loopml.workspace import Workspace

READ_COMMANDS = [
    ("runs", "list"),
    ("runs", "list", "--json"),
    ("runs", "show", "abcd"),
    ("runs", "compare", "abcd", "ef01"),
    ("runs", "metric", "abcd", "loss"),
    ("runs", "delete", "abcd", "--yes"),
    ("data", "list"),
    ("data", "show", "credit"),
    ("data", "contract", "credit"),
    ("data", "validate", "{csv}", "--against", "credit"),
    ("db", "current"),
    ("gc",),
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_read_command_with_a_missing_home_creates_nothing(tmp_path, args):
    missing = tmp_path / "typo" / "ws"
    csv = tmp_path / "new.csv"
    csv.write_text("a,b\n1,2\n")
    args = [str(csv) if arg == "{csv}" else arg for arg in args]
    result = subprocess.run([sys.executable, "-m", "loopml", *args, "--home", str(missing)],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"loopml: error: no workspace at {missing}")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [csv]  # no folder, no loopml.db, no artifacts, no pii.key


def test_open_without_create_refuses_a_missing_workspace(tmp_path):
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    assert not workspace.exists()
    with pytest.raises(StoreUnavailable, match=r"no workspace at .*loopml.db does not exist"):
        workspace.open(create=False)
    assert not (tmp_path / "ws").exists()
    with pytest.raises(StoreUnavailable):
        TrackingClient.from_workspace(workspace, create=False)
    assert list(tmp_path.iterdir()) == []


def test_open_without_create_reads_an_existing_workspace(tmp_path):
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    writer = TrackingClient.from_workspace(workspace)
    with writer.start_run("r", project="p") as run:
        run.log_artifact(b"bytes", name="a.bin")
    writer.close()
    reader = TrackingClient.from_workspace(workspace, create=False)
    assert reader.get_run(run.id).status == "FINISHED"
    assert reader.load_artifact(run.id, "a.bin") == b"bytes"
    assert not Path(tmp_path / "ws" / "pii.key").exists()
