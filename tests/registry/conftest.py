"""Fixtures for registry tests (the helpers they use are in registry_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import write_credit


@pytest.fixture(scope="module")
def credit_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_credit(tmp_path_factory.mktemp("data") / "credit.csv")
