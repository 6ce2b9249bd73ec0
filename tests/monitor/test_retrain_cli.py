"""`loopml retrain`: the steps or JSON, exit 0 when done or nothing to do, 1 on a refusal, 2 on
bad input (one line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from retrain_helpers import (
    GATES,
    champion_workspace,
    copy_home,
    input_names,
    raise_alert,
    shifted,
    write_log,
)


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return champion_workspace(tmp_path_factory.mktemp("champion"))


@pytest.fixture
def workspace(champion_home, tmp_path):
    return copy_home(champion_home, tmp_path / "home")


def _project_file(folder: Path, *, gates: dict | None = None, retrain: dict | None = None
                  ) -> Path:
    settings = {
        "project": {"name": "credit"},
        "data": {"dataset": "credit", "target": "default", "sensitive": ["gender"]},
        "train": {"candidates": ["logistic"], "trials": 2, "n_jobs": 1, "seed": 5,
                  "cv_folds": 3},
        "gates": GATES if gates is None else gates,
        "retrain": {"min_new_labeled_rows": 300, **(retrain or {})},
    }
    path = folder / "loopml.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _loopml(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `loopml ARGS` through the CLI's entry point; return (exit code, stdout, stderr)."""
    from loopml import cli
    from loopml.cli.retrain import retrain

    if not any(c.name == "retrain" for c in cli.app.registered_commands):
        cli.app.command("retrain")(retrain)  # until cli/__init__ registers it
    monkeypatch.setattr(sys, "argv", ["loopml", *args])
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as done:
        cli.main()
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


@pytest.mark.slow
def test_a_refusal_exits_1_with_the_failed_gate_as_json(workspace, tmp_path, monkeypatch,
                                                         capsys):
    write_log(workspace, shifted(800), inputs=input_names(workspace))
    alert = raise_alert(workspace)
    config = _project_file(tmp_path, gates={"metrics": ["roc_auc >= 0.999"],
                                            "data_contract": False})
    code, out, _ = _loopml(monkeypatch, capsys, "retrain", "credit", "--config", str(config),
                           "--home", str(workspace.home), "--json")
    assert code == 1
    result = json.loads(out)
    assert (result["status"], result["promoted"], result["champion"], result["challenger"]) == \
        ("refused", False, 1, 2)
    assert result["alerts"] == [alert]
    assert result["failed"][0]["gate"] == "metric roc_auc >= 0.999"
    assert result["datasets"]["holdout"] == "credit-holdout@1"


@pytest.mark.slow
def test_a_promotion_prints_the_steps_and_exits_0(workspace, tmp_path, monkeypatch, capsys):
    write_log(workspace, shifted(800), inputs=input_names(workspace))
    raise_alert(workspace, kind="performance")
    config = _project_file(tmp_path, retrain={"data": "recent"})
    code, out, err = _loopml(monkeypatch, capsys, "retrain", "--config", str(config),
                             "--home", str(workspace.home))
    assert code == 0, err
    for step in ("triggered by 1 alert(s): #1 performance", "data credit@2: ",
                 "gate holdout credit-holdout@1", "promoted · credit@champion: version 1 → 2",
                 "loopml models history credit"):
        assert step in out


def test_nothing_to_do_and_too_few_rows_exit_0_with_the_reason(workspace, tmp_path,
                                                                monkeypatch, capsys):
    write_log(workspace, shifted(200), inputs=input_names(workspace))
    config = _project_file(tmp_path)
    args = ("retrain", "credit", "--config", str(config), "--home", str(workspace.home))
    code, out, _ = _loopml(monkeypatch, capsys, *args)
    assert code == 0 and "nothing to do: no drift/performance alert" in out
    code, out, _ = _loopml(monkeypatch, capsys, *args, "--force")
    assert code == 0 and "200 in the log" in out and "needs 300" in out


def test_blocked_gates_exit_1(workspace, tmp_path, monkeypatch, capsys):
    write_log(workspace, shifted(400), inputs=input_names(workspace))
    raise_alert(workspace)
    config = _project_file(tmp_path, gates={})  # the default gates: the data contract
    code, out, _ = _loopml(monkeypatch, capsys, "retrain", "--config", str(config), "--home",
                           str(workspace.home))
    assert code == 1
    assert "blocked" in out and "data_contract" in out and "customer_id" in out


def test_bad_input_is_one_line_with_exit_2(workspace, tmp_path, monkeypatch, capsys):
    code, _, err = _loopml(monkeypatch, capsys, "retrain", "--config",
                           str(tmp_path / "missing.yaml"), "--home", str(workspace.home))
    assert code == 2 and err.count("\n") == 1 and "no such project file" in err
    config = _project_file(tmp_path)
    code, _, err = _loopml(monkeypatch, capsys, "retrain", "credit@staging", "--config",
                           str(config), "--home", str(workspace.home))
    assert code == 2 and err.count("\n") == 1 and "retrain.promote_to" in err
    code, _, err = _loopml(monkeypatch, capsys, "retrain", "nosuch", "--config", str(config),
                           "--home", str(workspace.home), "--force")
    assert code == 2 and err.count("\n") == 1 and "nosuch" in err
