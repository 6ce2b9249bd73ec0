"""`loopml models promote`: gates on the same rows, refusals that never move the alias, --force."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from registry_helpers import credit_project, train, write_credit

from loopml.config import ProjectConfig
from loopml.workspace import Workspace
from loopml_cli import run_loopml


def _weak(config: ProjectConfig) -> ProjectConfig:
    """The same project on one weak column: a challenger clearly worse than the champion."""
    return config.model_copy(update={"features": config.features.model_copy(
        update={"numeric": ["years_at_address"], "categorical": []})})


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> tuple[Path, Path]:
    """credit@1 (all columns) and credit@2 (one weak column) on credit data version 1."""
    root = tmp_path_factory.mktemp("promote")
    source = write_credit(root / "credit.csv", rows=1500)
    workspace = Workspace.from_env(root / "ws", env={})
    config = credit_project(source)
    train(config, workspace, project_dir=root)
    train(_weak(config), workspace, project_dir=root)
    return root / "ws", root


def _json(result) -> object:
    return json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


def test_a_worse_challenger_is_refused_and_force_needs_and_records_a_reason(two_versions):
    home, _ = two_versions
    first = run_loopml("models", "promote", "credit", "1", "--to", "champion", home=home)
    assert first.returncode == 0 and "promoted" in first.stdout, first.stderr

    refused = run_loopml("models", "promote", "credit", "2", "--to", "champion", "--json",
                         home=home)
    assert refused.returncode == 1, refused.stderr
    report = _json(refused)
    assert report["outcome"] == "refused" and not report["moved"]
    beats = next(g for g in report["report"]["gates"] if g["name"] == "beats_champion")
    assert not beats["passed"] and beats["observed"] < 0
    comparison = report["report"]["comparison"]
    assert comparison["challenger"] < comparison["champion"] and comparison["resamples"] > 900
    assert report["report"]["rows"]["count"] > 100  # the same test rows for both
    card = Path(report["card"]).read_text()
    assert "Promotion gates" in card and "refused" in card
    shown = _json(run_loopml("models", "show", "credit@champion", "--json", home=home))
    assert shown["version"] == 1  # the alias did not move

    no_reason = run_loopml("models", "promote", "credit", "2", "--force", home=home)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    forced = run_loopml("models", "promote", "credit", "2", "--force", "--reason",
                        "hotfix: the March data", home=home)
    assert forced.returncode == 0 and "FORCED" in forced.stdout, forced.stderr
    history = _json(run_loopml("models", "history", "credit", "--alias", "champion", "--json",
                               home=home))
    assert [(e["from_version"], e["to_version"], e["outcome"]) for e in history] == [
        (None, 1, "moved"), (1, 2, "refused"), (1, 2, "forced")]
    assert history[2]["reason"] == "hotfix: the March data" and not history[2]["gates_passed"]
    assert "beats_champion" in history[1]["reason"]
    again = run_loopml("models", "promote", "credit", "2", home=home)
    assert again.returncode == 0 and "already points at version 2" in again.stdout


def test_the_champion_is_rescored_on_rows_it_never_trained_on(two_versions, tmp_path):
    """A challenger trained on a newer data version: its test rows minus the champion's training
    rows, checked against the champion's own training rows by content."""
    from loopml.registry.promote import comparison_rows, training_parts
    from loopml.registry.registry import Registry

    home, root = two_versions
    grown = pd.concat([pd.read_csv(root / "credit.csv"),
                       pd.read_csv(write_credit(tmp_path / "more.csv", rows=400, seed=11))],
                      ignore_index=True)
    grown.to_csv(tmp_path / "credit.csv", index=False)
    workspace = Workspace.from_env(home, env={})
    outcome = train(credit_project(tmp_path / "credit.csv"), workspace, project_dir=tmp_path)
    with Registry.open(workspace) as registry:
        challenger = registry.get(outcome.version.ref)
        champion = registry.get("credit@1")
        assert challenger.lineage["dataset"] == "credit@2"
        rows, note, target = comparison_rows(registry, challenger, champion)
        test = training_parts(registry, challenger)["test"]
        seen = training_parts(registry, champion)
    trained_on = pd.concat([seen["train"], seen["validation"]])
    key = list(rows.columns)
    overlap = rows.merge(trained_on[key].drop_duplicates(), on=key, how="inner")
    assert overlap.empty and target == "default"
    removed = len(test) - len(rows)
    assert removed > 0 and f"{removed} removed" in note  # the old rows the champion knew


def test_a_model_of_another_target_cannot_be_compared_with_the_champion(two_versions, tmp_path):
    home, root = two_versions
    config = credit_project(root / "credit.csv")
    income = config.model_copy(update={
        "data": config.data.model_copy(update={"target": "income", "sensitive": []}),
        "train": config.train.model_copy(update={"candidates": ["linear"]})})
    outcome = train(income, Workspace.from_env(home, env={}), project_dir=root)
    assert outcome.version.name == "credit" and outcome.version.task == "regression"
    # its own alias: this test must not depend on what the others did to champion
    first = run_loopml("models", "promote", "credit", "1", "--to", "incumbent", home=home)
    assert first.returncode == 0, first.stderr
    done = run_loopml("models", "promote", "credit", str(outcome.version.version), "--to",
                      "incumbent", "--force", "--reason", "try", home=home)
    assert done.returncode == 2 and "cannot be compared" in done.stderr, done.stderr
    assert _json(run_loopml("models", "show", "credit@incumbent", "--json",
                            home=home))["version"] == 1
