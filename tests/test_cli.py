"""The `loopml` command, run as users run it: a separate process, exit codes, stdout/stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.store import migrate
from loopml.tracking import TrackingClient
from loopml.workspace import Workspace
from loopml_cli import run_loopml as loopml


def assert_one_line_error(result: subprocess.CompletedProcess, match: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopml: error: "), result.stderr
    assert match in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def home(tmp_path) -> tuple[Path, dict[str, str]]:
    """A workspace with two finished runs (one with a child) and one failed run."""
    home = tmp_path / "ws"
    client = TrackingClient.from_workspace(Workspace.from_env(home, env={}))
    ids = {}
    for name, c in (("alpha", 0.1), ("beta", 1.0)):
        with client.start_run(name, project="cli") as run:
            run.log_params({"C": c, "model": "logreg"})
            for step in range(5):
                run.log_metric("loss", 1 / (step + 1 + c))
            run.log_metric("auc", 0.8 + c / 10)
            run.log_artifact(b"bytes", name="model.bin")
            with client.start_run(f"{name}-trial", project="cli", parent=run) as child:
                child.log_metric("auc", 0.5)
        ids[name], ids[f"{name}-trial"] = run.id, child.id
    with pytest.raises(ValueError), client.start_run("broken", project="cli") as run:
        raise ValueError("bad data")
    ids["broken"] = run.id
    client.close()
    return home, ids


def test_help_lists_the_commands():
    result = loopml("--help")
    assert result.returncode == 0
    for command in ("runs", "db", "demo"):
        assert command in result.stdout


def test_runs_list_table_and_json(home):
    path, ids = home
    table = loopml("runs", "list", home=path)
    assert table.returncode == 0, table.stderr
    assert "alpha" in table.stdout and "FAILED" in table.stdout and "auc" in table.stdout
    rows = json.loads(loopml("runs", "list", "--json", home=path).stdout)
    assert [r["name"] for r in rows] == ["broken", "beta", "alpha"]  # newest first
    assert rows[0]["status"] == "FAILED" and rows[0]["error"] == "ValueError: bad data"
    assert rows[1]["metrics"]["auc"] == pytest.approx(0.9)
    with_children = json.loads(loopml("runs", "list", "--children", "--json", home=path).stdout)
    assert len(with_children) == 5
    failed = json.loads(loopml("runs", "list", "--status", "FAILED", "--json", home=path).stdout)
    assert [r["id"] for r in failed] == [ids["broken"]]


def test_runs_show_by_prefix(home):
    path, ids = home
    result = loopml("runs", "show", ids["alpha"][:8], "--json", home=path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["id"] == ids["alpha"] and shown["params"] == {"C": "0.1", "model": "logreg"}
    assert shown["metrics"]["loss"]["step"] == 4
    assert shown["artifacts"][0]["name"] == "model.bin"
    assert shown["children"] == [ids["alpha-trial"]]
    table = loopml("runs", "show", ids["alpha"], home=path)
    assert "model.bin" in table.stdout and "logreg" in table.stdout


def test_runs_compare(home):
    path, ids = home
    result = loopml("runs", "compare", ids["alpha"], ids["beta"], "--json", home=path)
    compared = json.loads(result.stdout)
    assert compared["params"]["C"] == ["0.1", "1.0"]
    assert compared["metrics"]["auc"] == [pytest.approx(0.81), pytest.approx(0.9)]
    assert "alpha" in loopml("runs", "compare", ids["alpha"], ids["beta"], home=path).stdout


def test_runs_metric_history(home):
    path, ids = home
    points = json.loads(loopml("runs", "metric", ids["beta"], "loss", "--json", home=path).stdout)
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert points[0]["value"] == pytest.approx(1 / 2)


def test_runs_delete(home):
    path, ids = home
    refused = loopml("runs", "delete", ids["alpha"], home=path, stdin="n\n")
    assert refused.returncode == 1
    result = loopml("runs", "delete", ids["alpha"], "--yes", home=path)
    assert result.returncode == 0 and "deleted 2 run(s)" in result.stdout
    remaining = json.loads(loopml("runs", "list", "--children", "--json", home=path).stdout)
    assert ids["alpha"] not in {r["id"] for r in remaining} and len(remaining) == 3


def test_bad_input_is_one_line_and_exit_code_2(home, tmp_path):
    path, ids = home
    assert_one_line_error(loopml("runs", "show", "deadbeef", home=path), "no run with id")
    assert_one_line_error(loopml("runs", "list", "--status", "DONE", home=path), "status 'DONE'")
    assert_one_line_error(loopml("runs", "compare", ids["alpha"], home=path), "at least two")
    assert_one_line_error(loopml("runs", "metric", ids["alpha"], "nope", home=path),
                          "has no metric 'nope'")
    assert_one_line_error(
        loopml("runs", "list", env={"LOOPML_STORE_URI": "mysql://x@y/z"}), "not supported"
    )
    assert_one_line_error(
        loopml("runs", "list", env={"LOOPML_STORE_URI": "sqlite:////no/such/dir/x.db"}),
        "/no/such/dir/x.db does not exist",
    )
    usage = loopml("runs", "lst", home=path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_workspace_from_a_newer_schema_is_a_clear_error(home):
    from sqlalchemy import create_engine, text

    path, _ = home
    engine = create_engine(f"sqlite:///{path / 'loopml.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    assert_one_line_error(loopml("runs", "list", home=path), "written by a newer loopml")


def test_db_upgrade_and_current(tmp_path):
    first = loopml("db", "upgrade", home=tmp_path / "ws")
    head = migrate.HEAD
    assert first.returncode == 0 and f"schema empty -> {head}" in first.stdout
    again = loopml("db", "upgrade", home=tmp_path / "ws")
    assert f"already at {head}" in again.stdout
    current = loopml("db", "current", home=tmp_path / "ws").stdout
    assert f"schema {head} (this loopml: {head})" in current


@pytest.mark.slow
def test_demo_closes_the_loop(tmp_path):  # ~1.5 min: three trainings, ONNX, gates, serving
    home = tmp_path / "demo"
    result = loopml("demo", "--dir", str(home))
    assert result.returncode == 0, result.stderr
    story = result.stdout[result.stdout.find("7 · retrain"):]  # shown when an assert fails
    assert "failed (3 violation(s))" in result.stdout  # the bad batch is caught
    card = Path(result.stdout.split("Model card:")[1].split()[0])
    assert card.is_file() and "Fairness by sensitive group" in card.read_text()
    first = json.loads(loopml("models", "show", "demo@1", "--json", home=home).stdout)
    assert first["export"]["parity"]["passed"] and first["artifacts"]["onnx"]["sha256"]
    runs = json.loads(loopml("runs", "list", "--children", "--json", "--limit", "200",
                             home=home).stdout)
    parent = next(r for r in runs if r["id"] == first["run_id"])
    assert parent["status"] == "FINISHED" and parent["metrics"]["test_roc_auc"] > 0.65
    assert sum(r["parent_id"] == parent["id"] for r in runs) >= 4  # the search's trials
    shown = json.loads(loopml("data", "show", "credit@1", "--json", home=home).stdout)
    assert shown["pii"]["applied"] == {"email": "hash"}

    # Alerts: drift and performance on period 2 (windows 2 and 3 of v1), none on period 1
    # (windows 0 and 1), none on the retrained champion.
    alerts = json.loads(loopml("alerts", "list", "--json", home=home).stdout)
    raised = {(a["version"], a["start_key"], a["kind"]) for a in alerts}
    for window in (2, 3):
        assert {(1, window, "drift"), (1, window, "performance")} <= raised, story
    assert {(v, w) for v, w, _ in raised} <= {(1, 2), (1, 3)}, story

    # The challenger was promoted by the retraining policy, after beating the champion on
    # recent labelled rows it did not train on; a weaker one was refused before.
    history = json.loads(loopml("models", "history", "demo", "--json", home=home).stdout)
    assert [(e["from_version"], e["to_version"], e["outcome"]) for e in history] == \
        [(None, 1, "moved"), (1, 2, "refused"), (1, 3, "moved")], story
    champion = json.loads(loopml("models", "show", "demo@champion", "--json", home=home).stdout)
    why = champion["why"][0]
    assert champion["version"] == 3 and why["actor"] == "loopml retrain" and why["gates_passed"]
    assert "credit-holdout@1" in why["reason"] and "alert" in why["reason"]
    assert champion["lineage"]["dataset"] == "credit@2"
    holdout = json.loads(loopml("data", "show", "credit-holdout", "--json", home=home).stdout)
    assert holdout["rows"] > 100
    assert "the server swapped by itself: demo@champion v1 → v3" in result.stdout

    # Recent-window performance recovers: the new champion's windows beat the old one's
    # period-2 windows, in the report the monitor wrote.
    report = json.loads((home / "reports" / "monitor-demo-750rows.json").read_text())

    def realised(version: int, windows: set[int]) -> list[float]:
        return [w["performance"]["realised"]["roc_auc"] for w in report["windows"]
                if w["version"] == version and w["index"] in windows]

    before, after = realised(1, {2, 3}), realised(3, {0, 1})
    assert len(before) == len(after) == 2
    assert min(after) > max(before) + 0.1
    assert (home / "reports" / "monitor-demo-750rows.html").read_text().count("<img") >= 3


# -- loopml data ------------------------------------------------------------------------------


@pytest.fixture
def credit_csv(tmp_path) -> Path:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 300
    path = tmp_path / "credit.csv"
    pd.DataFrame({
        "customer_id": range(n),
        "age": rng.integers(18, 80, n),
        "city": rng.choice(["Paris", "Lyon"], n),
        "email": [f"user{i}@example.com" for i in range(n)],
        "default": rng.integers(0, 2, n),
    }).to_csv(path, index=False)
    return path


def test_data_add_show_contract_validate_split(tmp_path, credit_csv):
    home = tmp_path / "ws"
    added = loopml("data", "add", str(credit_csv), "--name", "credit", "--target", "default",
                   "--pii", "email=hash", "--json", home=home)
    assert added.returncode == 0, added.stderr
    info = json.loads(added.stdout)
    assert info["created"] and info["ref"] == "credit@1" and info["rows"] == 300
    assert info["pii_found"] == [{"column": "email", "kind": "email", "reason": "name"}]
    assert Path(info["report"]).read_text().startswith("<!doctype html>")

    again = loopml("data", "add", str(credit_csv), "--name", "credit", "--pii", "email=hash",
                   home=home)
    assert again.returncode == 0 and "unchanged" in again.stdout

    listed = json.loads(loopml("data", "list", "--json", home=home).stdout)
    assert [v["ref"] for v in listed] == ["credit@1"]
    shown = json.loads(loopml("data", "show", "credit@1", "--json", home=home).stdout)
    assert shown["profile"]["columns"]["age"]["count"] == 300
    html = tmp_path / "report.html"
    assert loopml("data", "show", "credit", "--html", str(html), home=home).returncode == 0
    assert "data:image/png;base64" in html.read_text()

    contract = loopml("data", "contract", "credit", home=home).stdout
    assert "target: default" in contract and "unique: true" in contract
    edited = tmp_path / "contract.yaml"
    edited.write_text(contract.replace("- Lyon\n", ""))
    stored = loopml("data", "contract", "credit", "--set", str(edited), home=home)
    assert stored.returncode == 0, stored.stderr

    failing = loopml("data", "validate", str(credit_csv), "--against", "credit", "--json",
                     home=home)
    assert failing.returncode == 1
    report = json.loads(failing.stdout)
    assert not report["passed"]
    assert [(v["column"], v["rule"], v["examples"]) for v in report["violations"]] == [
        ("city", "allowed", ["Lyon"])
    ]
    table = loopml("data", "validate", str(credit_csv), "--against", "credit", home=home)
    assert table.returncode == 1 and "allowed" in table.stdout

    split = loopml("data", "split", "credit", "--method", "stratified", "--by", "default",
                   "--seed", "3", home=home)
    import re

    counts = [int(n) for n in re.findall(r"(?:train|validation|test) (\d+)", split.stdout)]
    assert split.returncode == 0 and sum(counts) == 300 and 205 <= counts[0] <= 215


def test_data_bad_input_is_one_line_exit_2(tmp_path, credit_csv):
    home = tmp_path / "ws"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    assert_one_line_error(loopml("data", "add", str(ragged), "--name", "r", home=home),
                          "ragged.csv: CSV parse error: Expected 2 columns, got 3")
    assert_one_line_error(loopml("data", "add", str(credit_csv), home=home), "--name")
    assert_one_line_error(
        loopml("data", "add", str(credit_csv), "--name", "c", "--target", "churn", home=home),
        "target column 'churn' is not in the data",
    )
    assert_one_line_error(loopml("data", "show", "nope", home=home), "no dataset named 'nope'")
    assert_one_line_error(
        loopml("data", "add", str(credit_csv), "--name", "c", "--pii", "email", home=home),
        "COLUMN=drop|hash|keep",
    )
    assert_one_line_error(
        loopml("data", "split", "nope", "--fractions", "a,b", home=home), "--fractions"
    )
    assert json.loads(loopml("data", "list", "--json", home=home).stdout) == []


def test_project_file_supplies_name_target_and_pii(tmp_path, credit_csv):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "loopml.yaml").write_text(
        "project:\n  name: risk\ndata:\n  dataset: credit\n  target: default\n"
        f"  source: {credit_csv}\n  pii:\n    email: drop\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "ws")
    result = subprocess.run([sys.executable, "-m", "loopml", "data", "add", "--json"],
                            cwd=project, env=env, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["project"], info["dataset"], info["columns"]) == ("risk", "credit", 4)
    assert info["pii"]["applied"] == {"email": "drop"}
    (project / "loopml.yaml").write_text("data:\n  pii:\n    email: mask\n")
    bad = subprocess.run([sys.executable, "-m", "loopml", "data", "add", str(credit_csv),
                          "--name", "x"], cwd=project, env=env, text=True, capture_output=True,
                         timeout=300)
    assert_one_line_error(bad, "loopml.yaml: data.pii.email: Input should be 'drop', 'hash' or "
                               "'keep'")


# -- loopml init / train ------------------------------------------------------------------------


def test_init_then_train_from_the_shell(tmp_path):
    from loopml.demo_data import make_credit

    make_credit(800, seed=2).to_csv(tmp_path / "credit.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update({"LOOPML_HOME": str(tmp_path / "ws"), "COLUMNS": "200"})

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loopml", *args], cwd=tmp_path, env=env,
                              text=True, capture_output=True, timeout=600)

    init = run("init", "credit.csv", "--target", "default", "--sensitive", "gender")
    assert init.returncode == 0, init.stderr
    text = (tmp_path / "loopml.yaml").read_text()
    assert "task: binary" in text and "sensitive: [gender]" in text
    assert_one_line_error(run("init", "credit.csv", "--target", "default"), "already exists")
    assert_one_line_error(run("init", "credit.csv", "--target", "nope", "--force"),
                          "no column 'nope'")
    (tmp_path / "loopml.yaml").write_text(
        text.replace("trials: 40", "trials: 4").replace(
            "candidates: [linear, random_forest, hist_gradient_boosting, lightgbm, xgboost]",
            "candidates: [linear, lightgbm]").replace("n_jobs: -1", "n_jobs: 1"))
    trained = run("train")
    assert trained.returncode == 0, trained.stderr
    assert "model card:" in trained.stdout and "final:" in trained.stdout
    (tmp_path / "loopml.yaml").write_text(text.replace("metric: roc_auc", "metric: rmse"))
    assert_one_line_error(run("train"), "'rmse' does not fit a binary task")
    (tmp_path / "loopml.yaml").write_text(text + "\ntrian: {}\n")
    assert_one_line_error(run("train"), "loopml.yaml: trian: Extra inputs are not permitted")
