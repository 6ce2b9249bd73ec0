"""The `loopml` command run as users run it: a separate process, its exit code and output."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from loopml_cli import run_loopml

Cli = Callable[..., subprocess.CompletedProcess]


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
