"""`train.time_budget_s` is the whole command's: the search leaves what refit and the rest take."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import ProjectConfig
from loopml.demo_data import make_credit
from loopml.train.runner import train_project
from loopml.train.search import POLL_S
from loopml.workspace import Workspace


@pytest.mark.slow
def test_the_search_stops_leaving_the_time_it_reserved(tmp_path: Path):  # ~25 s
    source = tmp_path / "credit.csv"
    make_credit(50_000, seed=4).to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "budget"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "pii": {"email": "hash"}},
        "train": {"candidates": ["lightgbm", "hist_gradient_boosting"], "trials": None,
                  "time_budget_s": 20, "n_jobs": 1, "seed": 3}})
    outcome = train_project(config, workspace=Workspace.from_env(tmp_path / "home", env={}),
                            project_dir=tmp_path)
    timings = outcome.card["timings"]
    assert list(timings)[:5] == ["prepare", "search", "select", "refit", "evaluation"]
    assert timings["budget"] == 20 and timings["stopped_for_reserve"]
    reserved = timings["reserved"]
    assert 3.0 < reserved <= 10.0  # measured from the trials, at most half the budget
    # The search was asked to end once the command had used its budget less the reserve
    # (checked at each progress poll); running trials end at their next fold.
    assert timings["stop_asked_at"] <= 20 - reserved + POLL_S + 0.5
    assert timings["search"] > 0 and timings["refit"] > 0 and timings["evaluation"] > 0
