"""Helpers for registry tests: small credit files, fast projects, a git repository, workspaces.

A plain module (not conftest.py): test files import it by name, which a conftest cannot be
reliably (every test folder has one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.config import ProjectConfig
from loopml.workspace import Workspace

if TYPE_CHECKING:
    from loopml.train.runner import TrainOutcome

# A raw value of the demo data's email column (declared `pii: {email: hash}`).
RAW_EMAIL = re.compile(r"customer\d+@(?:mail\.fr|post\.com|web\.de)")


def write_credit(path: Path, *, rows: int = 600, seed: int = 3) -> Path:
    """Return ``path`` after writing ``rows`` generated credit customers to it as CSV."""
    from loopml.demo_data import make_credit

    path.parent.mkdir(parents=True, exist_ok=True)
    make_credit(rows, seed=seed).to_csv(path, index=False)
    return path


def credit_project(source: Path, *, name: str = "credit", models_name: str | None = None,
                   seed: int = 5, gates: dict | None = None) -> ProjectConfig:
    """Return a small, fast project on ``source``: logistic regression, two trials."""
    settings: dict = {
        "project": {"name": name},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": {"candidates": ["logistic"], "trials": 2, "n_jobs": 1, "seed": seed,
                  "cv_folds": 3},
    }
    if models_name is not None:
        settings["models"] = {"name": models_name}
    if gates is not None:
        settings["gates"] = gates
    return ProjectConfig.model_validate(settings)


def train(config: ProjectConfig, workspace: Workspace, *, project_dir: Path) -> TrainOutcome:
    """Return the outcome of training ``config`` in ``workspace`` (registered as a version)."""
    from loopml.train.runner import train_project

    return train_project(config, workspace=workspace, project_dir=project_dir)


def workspace_at(home: Path, store_url: str | None = None, *,
                 artifacts: str | None = None) -> Workspace:
    """Return a workspace in ``home`` whose metadata store is ``store_url`` (default SQLite)."""
    env = {}
    if store_url is not None:
        env["LOOPML_STORE_URI"] = store_url
    if artifacts is not None:
        env["LOOPML_ARTIFACTS_URI"] = artifacts
    return Workspace.from_env(home, env=env)


def _git(*args: str, cwd: Path) -> str:
    # A fixed identity, and no user or system configuration (signing, hooks) in the way.
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_git_repo(folder: Path) -> str | None:
    """Return the HEAD commit of a new repository in ``folder`` (one commit), None without git."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("git") is None:
        return None
    _git("init", "-q", cwd=folder)
    (folder / "README.md").write_text("a project\n")
    _git("add", "README.md", cwd=folder)
    _git("commit", "-q", "-m", "first", cwd=folder)
    return _git("rev-parse", "HEAD", cwd=folder)


def inside_git_repo(folder: Path) -> bool:
    """Return whether ``folder`` lies in a git work tree (then it has a commit to read)."""
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0
