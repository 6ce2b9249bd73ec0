"""Fixtures for training tests: a small generated credit dataset in a fresh workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import ProjectConfig
from loopml.workspace import Workspace


@pytest.fixture
def credit_file(tmp_path: Path) -> Path:
    from loopml.demo_data import make_credit

    path = tmp_path / "credit.csv"
    make_credit(1200, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.from_env(tmp_path / "ws", env={})


def project(credit_file: Path, **train: object) -> ProjectConfig:
    """A small, fast project: two candidates, a few trials, one worker unless said."""
    settings = {"candidates": ["linear", "lightgbm"], "trials": 6, "n_jobs": 1, "seed": 5,
                "cv_folds": 3}
    settings.update(train)
    return ProjectConfig.model_validate({
        "project": {"name": "risk"},
        "data": {"dataset": "credit", "source": str(credit_file), "target": "default",
                 "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": settings,
    })
