"""Training hardening (issue 7): data versions per run, `loopml init` YAML, config limits.

Commands run as a user runs them (a real `loopml` subprocess) where the promise is about
the command line: one line on stderr, exit code 2, no traceback, nothing left behind.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from loopml.errors import InvalidInput
from loopml.tracking import TrackingClient
from loopml.train.runner import train_project
from loopml.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from conftest import project  # noqa: E402
from loopml_cli import run_loopml as loopml  # noqa: E402

FAST = {"candidates": ["linear"], "trials": 2, "n_jobs": 1, "cv_folds": 2}


def runs_in(home: Path) -> list:
    if not (home / "loopml.db").exists():
        return []
    client = TrackingClient.from_workspace(Workspace.from_env(home, env={}))
    try:
        return client.list_runs(limit=None)
    finally:
        client.close()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopml: error: "), result.stderr
    return lines[0]


# -- 1: every run hashes data.source; changed content is the next version ---------------------
def test_changed_source_becomes_the_next_version_and_the_output_names_it(credit_file,
                                                                         workspace):
    from loopml.data import Catalog
    from loopml.demo_data import make_credit

    def train() -> tuple[str, str]:
        out = io.StringIO()
        outcome = train_project(project(credit_file, **FAST), workspace=workspace,
                                console=Console(file=out, width=300))
        return outcome.card["data"]["ref"], out.getvalue()

    first, said = train()
    assert first == "credit@1" and "data credit@1 (new: 1200 rows)" in said
    make_credit(1320, seed=4).to_csv(credit_file, index=False)
    second, said = train()
    assert second == "credit@2" and "data credit@2 (new: 1320 rows, +120)" in said
    again, said = train()
    assert again == "credit@2" and "data credit@2 (unchanged)" in said

    client = TrackingClient.from_workspace(workspace)
    catalog = Catalog(client.store, client.artifacts)
    versions = catalog.list("credit", project="risk")
    assert sorted(v.seq for v in versions) == [1, 2]  # the unchanged file was not copied
    trains = sorted((r for r in client.list_runs(project="risk", limit=None)
                     if r.name == "train"), key=lambda r: r.start_time)
    used = [client.run_detail(r.id).params["data"] for r in trains]
    assert used == ["credit@1", "credit@2", "credit@2"]


# -- 2: `loopml init` writes YAML that reads back; init -> train with awkward names -------------
AWKWARD_COLUMNS = ["2024", "no", "null", "Income, USD", "a: b", "# hash", "it's \"q\"",
                   "ünï cödé", " lead", "trail ", "yes"]


@pytest.mark.parametrize("file_name", ["2024.csv", " on, #1: 'q' \"ü\".csv"])
def test_init_round_trips_awkward_names_through_train(tmp_path, file_name):
    rng = np.random.default_rng(0)
    rows = 300
    signal = rng.normal(size=rows)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in AWKWARD_COLUMNS})
    frame["Income, USD"] = signal
    frame["no"] = rng.choice(["a", "b"], rows)
    frame["# hash"] = rng.choice(["p", "q", "r"], rows)
    frame["on"] = np.where(signal + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    (tmp_path / "data").mkdir()
    (tmp_path / "proj").mkdir()
    frame.to_csv(tmp_path / "data" / file_name, index=False)

    made = loopml("init", f"data/{file_name}", "--target", "on", "--sensitive", "no",
                  "--out", "proj/loopml.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    config_file = tmp_path / "proj" / "loopml.yaml"
    text = config_file.read_text(encoding="utf-8")
    assert text.count("\n#") >= 1 and "# auto | binary" in text  # comments kept
    written = yaml.safe_load(text)
    assert written["data"]["target"] == "on"
    assert written["data"]["sensitive"] == ["no"]
    assert (config_file.parent / written["data"]["source"]).resolve() == \
        (tmp_path / "data" / file_name).resolve()
    features = written["features"]
    assert sorted(features["numeric"] + features["categorical"]) == \
        sorted(c for c in AWKWARD_COLUMNS if c != "no")

    # Small and fast, edited as a user edits it: the rest of the file stays as init wrote it.
    text = text.replace("trials: 40 ", "trials: 2 ").replace("n_jobs: -1 ", "n_jobs: 1 ")
    text = text.replace("cv_folds: auto ", "cv_folds: 2 ")
    text = text.replace("[linear, random_forest, hist_gradient_boosting, lightgbm, xgboost]",
                        "[linear]")
    config_file.write_text(text, encoding="utf-8")
    trained = loopml("train", "--config", "proj/loopml.yaml", "--home", "ws", cwd=tmp_path,
                     timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert "model card:" in trained.stdout
    (run,) = [r for r in runs_in(tmp_path / "ws") if r.name == "train"]
    assert run.status == "FINISHED"


def test_init_out_never_writes_through_a_planted_link_and_refuses_bad_paths(credit_file,
                                                                             tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "proj"
    folder.mkdir()
    # The temp name the old code used, planted as a link to a file the user can write.
    (folder / ".loopml.yaml.part").symlink_to(victim)
    made = loopml("init", str(credit_file), "--target", "default", "--out",
                  "proj/loopml.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert victim.read_text() == "keep me"
    out = folder / "loopml.yaml"
    assert not out.is_symlink() and yaml.safe_load(out.read_text())["data"]["target"] == \
        "default"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".part")] == \
        [".loopml.yaml.part"]  # no temp file of ours left

    line = one_line_error(loopml("init", str(credit_file), "--target", "default", "--out",
                                 "proj", cwd=tmp_path))
    assert "--out proj is a folder" in line
    line = one_line_error(loopml("init", str(credit_file), "--target", "default", "--out",
                                 "missing/loopml.yaml", cwd=tmp_path))
    assert "folder missing does not exist" in line
    line = one_line_error(loopml("init", str(credit_file), "--target", "default", "--out",
                                 "proj/loopml.yaml", cwd=tmp_path))
    assert "already exists; pass --force" in line


# -- 6: a text target for regression, a misspelt search-space parameter ----------------------
@pytest.mark.parametrize(
    ("data", "train", "match"),
    [
        ({"target": "gender", "task": "regression", "sensitive": []}, {},
         r"data.task is regression, but target column 'gender' .* not numbers"),
        ({}, {"search_space": {"linear": {"Cc": {"low": 0.1, "high": 10}}}},
         r"train.search_space.linear: unknown parameter 'Cc'; linear \(LogisticRegressionCV, "
         r"binary\) takes: Cs, class_weight, .*"),
        ({}, {"candidates": ["lightgbm"],
              "search_space": {"lightgbm": {"num_leavs": {"low": 8, "high": 64, "int": True}}}},
         r"unknown parameter 'num_leavs'.* num_leaves"),
        ({}, {"search_space": {"linear": {"random_state": {"choices": [1, 2]}}}},
         r"train.search_space.linear: .*random_state.*loopml sets that parameter itself"),
        # fairness groups of a raw personal column would print its values in the card
        ({"pii": {"email": "keep"}, "sensitive": ["email"]}, {},
         r"data.sensitive names 'email', which holds personal data \(email\) stored raw"),
    ],
)
def test_config_that_cannot_train_is_one_error_before_any_run(credit_file, workspace, data,
                                                               train, match):
    from loopml.config import ProjectConfig

    settings = project(credit_file, **{**FAST, **train}).model_dump()
    settings["data"].update(data)
    with pytest.raises(InvalidInput, match=match):
        train_project(ProjectConfig.model_validate(settings), workspace=workspace)
    client = TrackingClient.from_workspace(workspace)
    assert client.list_runs(limit=None) == []  # no run, so no FAILED run left behind


# -- 16: a YAML alias bomb is refused at once ---------------------------------------------------
def alias_bomb(data_file: Path) -> str:
    """A project file that trains, but for ~600 bytes under gates: that expand to billions."""
    lines = ['gates:', '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(9):  # 9**10 ≈ 3.5 billion strings once expanded
        this, last = chr(98 + level), chr(97 + level)
        lines.append(f"  {this}: &{this} [" + ", ".join([f"*{last}"] * 9) + "]")
    return ("project: {name: risk}\n"
            f"data: {{dataset: credit, source: '{data_file}', target: default}}\n"
            "train: {candidates: [linear], trials: 2, n_jobs: 1}\n" + "\n".join(lines) + "\n")


def test_an_alias_bomb_is_refused_quickly_before_any_run(tmp_path, credit_file):
    bomb = alias_bomb(credit_file)
    assert len(bomb.split("gates:")[1].encode()) < 600
    (tmp_path / "loopml.yaml").write_text(bomb)
    started = time.monotonic()
    result = loopml("train", "--home", "ws", cwd=tmp_path, timeout=60)
    assert time.monotonic() - started < 60
    line = one_line_error(result)
    assert "loopml.yaml line 5: YAML anchors and aliases" in line
    assert runs_in(tmp_path / "ws") == []


def test_anchors_and_merge_keys_are_refused_too():
    from loopml.config import ProjectConfig
    from loopml.yamlfile import parse_yaml

    for text in ("project: &p {name: a}\n", "base: &b {trials: 2}\ntrain: {<<: *b}\n"):
        with pytest.raises(InvalidInput, match="anchors and aliases .* are not allowed"):
            parse_yaml(text, ProjectConfig, origin="loopml.yaml", shape="a project file")
    with pytest.raises(InvalidInput, match="nested too deeply"):
        parse_yaml("train: " + "[" * 5000, ProjectConfig, origin="loopml.yaml", shape="x")


# -- 17: never more workers than trials --------------------------------------------------------
def test_one_trial_starts_one_worker_whatever_n_jobs_says(credit_file, workspace):
    outcome = train_project(project(credit_file, **{**FAST, "trials": 1, "n_jobs": 5}),
                            workspace=workspace)
    assert outcome.card["search"]["workers"] == 1
    client = TrackingClient.from_workspace(workspace)
    trials = client.list_runs(parent_id=outcome.run_id, limit=None)
    assert len(trials) == 1
    # One worker runs in this process; five would each be a spawned process.
    assert trials[0].pid == os.getpid()


# -- 19: numbers out of range: one line naming the key and the allowed range ------------------
def one_positive_row(path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": 0})
    frame.loc[17, "y"] = 1
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ("seed: -1", "train.seed: must be a whole number from 0 to 2147483647, got -1"),
        (f"seed: {2**70}", "train.seed: must be a whole number from 0 to 2147483647"),
        ("cv_folds: 1000000000", "train.cv_folds is 1000000000, but there are at most 745 "
                                 "rows of a class among the 1020 train + validation rows; use a "
                                 "number from 2 to 745"),
        ("cv_folds: 1", "train.cv_folds: must be auto or a whole number of folds from 2 up"),
        ("search_space: {linear: {C: {low: 0, high: 10, log: true}}}",
         "train.search_space.linear.C: low must be above 0 with log: true"),
        ("search_space: {linear: {C: {low: 0.1, high: 1.0e309}}}",
         "train.search_space.linear.C: high must be a finite number, got inf"),
        ("time_budget_s: .inf", "train.time_budget_s: must be a number of seconds above 0 and "
                                "at most 31536000"),
        ("trials: 1000000000000", "train.trials: must be a whole number from 1 to 100000"),
        ("n_jobs: 0", "train.n_jobs: must be -1 (one per core) or a whole number from 1 to"),
        ("ONE_POSITIVE", "target column 'y' of data@1 has only 1 row of class 1 (binary task); "
                         "every class needs at least 5 rows"),
    ],
)
def test_numbers_out_of_range_are_one_line_errors(tmp_path, credit_file, train, expected):
    if train == "ONE_POSITIVE":
        one_positive_row(tmp_path / "data.csv")
        source, target, train = tmp_path / "data.csv", "y", "seed: 1"
    else:
        source, target = credit_file, "default"
    (tmp_path / "loopml.yaml").write_text(
        "project: {name: risk}\n"
        f"data: {{dataset: {'data' if target == 'y' else 'credit'}, source: '{source}', "
        f"target: {target}}}\n"
        f"train:\n  candidates: [linear]\n  trials: 2\n  n_jobs: 1\n  {train}\n")
    line = one_line_error(loopml("train", "--home", "ws", cwd=tmp_path))
    assert expected in line
    assert runs_in(tmp_path / "ws") == []


def test_a_search_range_that_excludes_the_default_still_runs_its_first_trial(credit_file,
                                                                             workspace):
    # lightgbm's default learning_rate is 0.05; the first (queued) trial must not insist on it.
    space = {"lightgbm": {"learning_rate": {"low": 0.1, "high": 0.2}}}
    outcome = train_project(project(credit_file, **{**FAST, "candidates": ["lightgbm"],
                                                    "trials": 1, "search_space": space}),
                            workspace=workspace)
    assert outcome.search.complete == 1
    assert 0.1 <= outcome.search.best_params["learning_rate"] <= 0.2


def test_a_search_leaves_the_callers_optuna_log_level_alone(credit_file, workspace):
    """No process-global side effects: a notebook's Optuna logging stays as it was."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        outcome = train_project(project(credit_file, **{**FAST, "trials": 2}),
                                workspace=workspace)
        assert outcome.search.complete >= 1
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


def test_a_misspelt_search_space_parameter_is_refused_before_the_source_is_stored(
        credit_file, workspace):
    from loopml.data import Catalog

    config = project(credit_file, **{**FAST, "search_space": {
        "linear": {"Cc": {"low": 0.1, "high": 10}}}})
    with pytest.raises(InvalidInput, match="unknown parameter 'Cc'"):
        train_project(config, workspace=workspace)
    assert Catalog(*workspace.open()).list() == []  # nothing read, hashed or stored
