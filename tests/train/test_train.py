"""`loopml train` end to end: search, refit, evaluate, card; determinism; bad configs; Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from loopml.errors import InvalidInput
from loopml.tracking import TrackingClient
from loopml.train.runner import train_project

sys.path.insert(0, str(Path(__file__).parent))
from conftest import project  # noqa: E402


def test_train_records_a_searched_evaluated_model_with_its_card(credit_file, workspace):
    outcome = train_project(project(credit_file), workspace=workspace)
    client = TrackingClient.from_workspace(workspace)
    detail = client.run_detail(outcome.run_id)
    assert detail.run.status == "FINISHED"
    assert {a.name for a in detail.artifacts} == {"model.loopml", "model_card.json",
                                                  "model_card.html"}
    trials = [client.run_detail(c) for c in detail.children]
    assert len(trials) >= 6 and all(t.run.status == "FINISHED" for t in trials)
    assert all(t.params["model"] in ("linear", "lightgbm") for t in trials)
    assert {t.tags["state"] for t in trials} <= {"COMPLETE", "PRUNED"}

    # The stored model, loaded through the public API, takes raw rows and reproduces the
    # card's test metric.
    import loopml

    model = loopml.load_model(outcome.run_id[:8], workspace=workspace)
    card = json.loads(client.load_artifact(outcome.run_id, "model_card.json"))
    from loopml.data import Catalog, SplitSpec

    catalog = Catalog(client.store, client.artifacts)
    spec = SplitSpec(**{k: (tuple(v) if k == "fractions" else v)
                        for k, v in card["data"]["split"].items()})
    test = catalog.load_split("credit", spec, project="risk")["test"]
    proba = model.predict_proba(test.drop(columns=["default"]))[:, 1]
    assert card["evaluation"]["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(test["default"], proba))
    assert len(test) == card["data"]["rows"]["test"]
    assert set(model.predict(test.head(20))) <= {0, 1}
    assert card["evaluation"]["metrics"]["roc_auc"] > 0.6
    assert card["evaluation"]["fairness"]["gender"]["groups"].keys() == {"female", "male"}
    assert outcome.card_path.read_text().count("data:image/png;base64") >= 4
    # Lineage: the run used the dataset version in three roles.
    roles = sorted(role for _, role in client.store.datasets.inputs_of(outcome.run_id))
    assert roles == ["test", "train", "validation"]


def test_same_config_data_and_seed_give_the_same_result(credit_file, workspace, tmp_path):
    from loopml.workspace import Workspace

    first = train_project(project(credit_file), workspace=workspace)
    second = train_project(project(credit_file),
                           workspace=Workspace.from_env(tmp_path / "other", env={}))
    assert first.search.best_candidate == second.search.best_candidate
    assert first.search.best_params == second.search.best_params
    assert first.card["evaluation"]["metrics"] == second.card["evaluation"]["metrics"]
    # the same final model: the same selection, members and weights
    for key in ("candidate", "params", "threshold", "ensemble", "selection"):
        assert first.card["model"].get(key) == second.card["model"].get(key), key
    assert "selection" in first.card["model"]


def test_parallel_search_on_local_processes(credit_file, workspace):
    outcome = train_project(project(credit_file, n_jobs=2, trials=8), workspace=workspace)
    assert outcome.search.complete + sum(t["state"] == "PRUNED"
                                         for t in outcome.search.trials) >= 8
    # What the trial runs recorded, not what was configured: two worker processes (neither
    # of them this one) whose trials overlapped in time.
    client = TrackingClient.from_workspace(workspace)
    trials = client.list_runs(parent_id=outcome.run_id, limit=None)
    assert len(trials) >= 8 and all(t.end_time is not None for t in trials)
    pids = {t.pid for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids
    overlapping = [(a.name, b.name) for a in trials for b in trials
                   if a.pid != b.pid and a.start_time < b.end_time and b.start_time < a.end_time]
    assert overlapping, [(t.name, t.pid, t.start_time, t.end_time) for t in trials]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"train": {"trials": "many"}}, "train.trials: Input should be a valid integer"),
        ({"train": {"candidtes": ["linear"]}}, "train.candidtes: Extra inputs"),
        ({"train": {"candidates": ["svm"]}}, "unknown candidate"),
        ({"data": {"target": "churn"}}, "target column 'churn' is not in the data"),
        ({"train": {"metric": "rmse"}}, "train.metric.*'rmse' does not fit a binary task"),
        ({"data": {"sensitive": ["race"]}}, "data.sensitive names 'race'"),
    ],
)
def test_bad_config_is_one_clear_error_before_any_work(credit_file, workspace, change, match):
    from loopml.config import ProjectConfig
    from loopml.yamlfile import parse_yaml

    base = project(credit_file).model_dump(mode="json")
    for section, values in change.items():
        base[section].update(values)
    import yaml

    with pytest.raises(InvalidInput, match=match):
        config = parse_yaml(yaml.safe_dump(base), ProjectConfig, origin="loopml.yaml",
                            shape="a project file")
        train_project(config, workspace=workspace)
    client = TrackingClient.from_workspace(workspace)
    assert client.list_runs(project="risk") == []  # no run was started


def test_ctrl_c_keeps_finished_trials_and_reports_the_best(credit_file, tmp_path):
    (tmp_path / "loopml.yaml").write_text(
        "project: {name: risk}\n"
        f"data: {{dataset: credit, source: {credit_file}, target: default}}\n"
        "train: {candidates: [linear, random_forest], trials: 500, n_jobs: 1, cv_folds: 3}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "ws")
    proc = subprocess.Popen([sys.executable, "-m", "loopml", "train"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from loopml.workspace import Workspace

    deadline = time.monotonic() + 120
    client = None
    while time.monotonic() < deadline:
        time.sleep(1)
        if (tmp_path / "ws" / "loopml.db").exists():
            client = client or TrackingClient.from_workspace(
                Workspace.from_env(tmp_path / "ws", env={}))
            finished = [r for r in client.list_runs(project="risk", status="FINISHED")
                        if r.name.startswith("trial-")]
            if len(finished) >= 3:
                break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "best so far" in out and "finished trial(s) kept" in out
    parent = next(r for r in client.list_runs(project="risk") if r.name == "train")
    assert parent.status == "KILLED"
    trials = client.list_runs(project="risk", parent_id=parent.id, limit=None)
    assert sum(t.status == "FINISHED" for t in trials) >= 3
    best = json.loads(client.load_artifact(parent.id, "search_best.json"))
    assert best["best_so_far"]["candidate"] in ("linear", "random_forest")


@pytest.mark.slow
def test_search_on_a_local_ray_instance(credit_file, workspace):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = train_project(project(credit_file, backend="ray", n_jobs=2, trials=6),
                                workspace=workspace)
    finally:
        ray.shutdown()
    assert outcome.card["search"]["backend"] == "ray"
    assert outcome.search.complete >= 4
    client = TrackingClient.from_workspace(workspace)
    assert len(client.run_detail(outcome.run_id).children) >= 6


def test_regression_and_multiclass_tasks(tmp_path, workspace):
    from loopml.config import ProjectConfig

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=600), "c": rng.choice(["a", "b", "c"], 600),
                          "when": pd.date_range("2024-01-01", periods=600, freq="h")})
    frame["amount"] = 3 * frame.x + (frame.c == "a") * 2 + rng.normal(0, 0.3, 600)
    frame["grade"] = np.select([frame.x < -0.5, frame.x < 0.5], ["low", "mid"], "high")
    frame.to_csv(tmp_path / "d.csv", index=False)
    for target, task, metric in (("amount", "regression", "rmse"),
                                 ("grade", "multiclass", "log_loss")):
        config = ProjectConfig.model_validate({
            "project": {"name": "t"},
            "data": {"dataset": "d", "source": str(tmp_path / "d.csv"), "target": target},
            "features": {"drop": ["grade" if target == "amount" else "amount"]},
            "train": {"candidates": ["linear", "hist_gradient_boosting"], "trials": 3,
                      "n_jobs": 1, "cv_folds": 2},
        })
        outcome = train_project(config, workspace=workspace)
        assert outcome.card["task"] == task and outcome.card["metric"] == metric
        metrics = outcome.card["evaluation"]["metrics"]
        if task == "regression":
            assert metrics["r2"] > 0.8
        else:
            assert metrics["accuracy"] > 0.8
            assert set(outcome.model.predict(frame.head(30))) <= {"low", "mid", "high"}
