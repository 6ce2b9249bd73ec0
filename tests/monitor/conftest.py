"""Fixtures of the monitoring tests: one trained workspace, copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from monitor_helpers import credit_home


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with ``credit@1`` (champion), trained once per test module."""
    return credit_home(tmp_path_factory.mktemp("monitor"))


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained workspace per test: each test's monitor starts from nothing."""
    return Path(shutil.copytree(trained, tmp_path / "home"))
