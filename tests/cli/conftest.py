"""The `loopml` command run as users run it: a separate process, its exit code and output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess]


def run_loopml(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
               stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m loopml ARGS`` with a clean LOOPML_* environment and a wide terminal."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    if home is not None:
        full_env["LOOPML_HOME"] = str(home)
    full_env.update(env or {})
    full_env["COLUMNS"] = "250"
    return subprocess.run([sys.executable, "-m", "loopml", *args], env=full_env, text=True,
                          capture_output=True, timeout=timeout, input=stdin)


@pytest.fixture
def cli() -> Cli:
    return run_loopml


def assert_one_line(result: subprocess.CompletedProcess, *, code: int, prefix: str,
                    contains: str = "") -> str:
    """Assert the command failed with ``code`` and exactly one stderr line; return that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert contains in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def one_line() -> Callable[..., str]:
    return assert_one_line
