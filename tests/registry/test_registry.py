"""The model registry: versions from training, signature and lineage, aliases and history, CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from registry_helpers import (
    RAW_EMAIL,
    credit_project,
    inside_git_repo,
    make_git_repo,
    train,
    workspace_at,
    write_credit,
)

import loopml
from loopml.errors import ConstraintError, NotFound
from loopml.registry.registry import Registry
from loopml.store import Store
from loopml.train.runner import TrainOutcome
from loopml.workspace import Workspace
from loopml_cli import run_loopml

# Names a user may give a model: printed as typed, never read as markup or escape codes.
# ("/" is refused in a model name, so the markup here has no closing tag.)
ODD_NAMES = ["credit risk model", "modèle-δ 信用", "[red]x[bold]y", ":smile: $x «q» 'y'"]


@dataclass
class Trained:
    workspace: Workspace
    first: TrainOutcome  # credit@1, trained in a git repository
    second: TrainOutcome  # credit@2, other data, trained outside any repository
    named: TrainOutcome  # models.name: "credit scorer"
    commit: str | None  # the repository's HEAD when credit@1 was trained
    plain_dir: Path
    emails: set[str]  # every raw email of both data files
    frame: pd.DataFrame  # rows to score


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("registry")
    workspace = workspace_at(root / "ws")
    commit = make_git_repo(root / "project")
    plain = root / "plain"
    plain.mkdir()
    first_csv = write_credit(root / "data" / "credit.csv", seed=3)
    second_csv = write_credit(root / "data" / "credit-later.csv", seed=11)
    first = train(credit_project(first_csv), workspace, project_dir=root / "project")
    second = train(credit_project(second_csv, seed=6), workspace, project_dir=plain)
    named = train(credit_project(first_csv, models_name="credit scorer"), workspace,
                  project_dir=plain)
    with Registry.open(workspace) as registry:
        for name in ODD_NAMES:
            registry.register(first.run_id, name=name)
        models = registry.models
        models.move_alias("credit", "champion", 1, expected=None, actor="alice",
                          reason="first model", outcome="moved")
        models.move_alias("credit", "champion", 2, expected=1, actor="bob",
                          reason="newer data [red]2[/]", outcome="moved")
    emails = set(pd.read_csv(first_csv).email) | set(pd.read_csv(second_csv).email)
    from loopml.demo_data import make_credit

    return Trained(workspace=workspace, first=first, second=second, named=named, commit=commit,
                   plain_dir=plain, emails=emails, frame=make_credit(80, seed=21))


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _no_raw_email(text: str, emails: set[str]) -> None:
    assert RAW_EMAIL.search(text) is None
    assert not [e for e in emails if e in text]


def _cli(trained: Trained, *args: str):
    done = run_loopml(*args, home=trained.workspace.home)
    assert done.returncode == 0, done.stderr
    return done


# --- registration ---------------------------------------------------------------------------


def test_training_registers_the_next_version_under_the_project_name(trained):
    assert trained.first.version.ref == "credit@1"
    assert trained.second.version.ref == "credit@2"
    assert trained.first.version.source == "train"
    assert trained.first.version.run_id == trained.first.run_id
    assert trained.second.version.run_id == trained.second.run_id
    with Registry.open(trained.workspace) as registry:
        assert [v.version for v in registry.versions("credit")] == [2, 1]  # newest first
        assert registry.get("credit").version == 2  # the latest
        assert registry.get("credit@1").native_sha256 == trained.first.version.native_sha256


def test_models_name_in_the_project_file_names_the_registered_model(trained):
    assert trained.named.version.ref == "credit scorer@1"
    with Registry.open(trained.workspace) as registry:
        assert registry.get("credit scorer@1").run_id == trained.named.run_id
        assert {"credit", "credit scorer"} <= {m["name"] for m in registry.list()}


def test_registering_a_run_twice_returns_its_version_and_creates_nothing(trained):
    with Registry.open(trained.workspace) as registry:
        before = registry.versions("credit")
        again, created = registry.register(trained.first.run_id, name="credit")
        assert not created
        assert again.ref == "credit@1" and again.id == trained.first.version.id
        again, created = registry.register(trained.second.run_id, name="credit")
        assert not created and again.version == 2
        assert [v.id for v in registry.versions("credit")] == [v.id for v in before]


def test_the_same_run_under_another_name_is_that_models_first_version(trained):
    with Registry.open(trained.workspace) as registry:
        for name in ODD_NAMES:
            record = registry.get(f"{name}@1")
            assert record.name == name and record.run_id == trained.first.run_id
            assert record.native_sha256 == trained.first.version.native_sha256


def test_the_signature_is_the_models_inputs_with_the_datas_rules(trained):
    """Inputs in the model's order, kinds from the columns' types, rules as in the data."""
    data = pd.read_csv(trained.first.card["config"]["data"]["source"])
    signature = trained.first.version.signature
    inputs = signature["inputs"]
    assert [c["name"] for c in inputs] == list(trained.first.model.input_columns)
    for column in inputs:
        values = data[column["name"]]
        assert column["nullable"] is False and not values.isna().any()
        if pd.api.types.is_numeric_dtype(values):
            assert column["kind"] == "number"
            assert column["type"] == ("integer" if pd.api.types.is_integer_dtype(values)
                                      else "number")
            assert column["min"] == pytest.approx(values.min())
            assert column["max"] == pytest.approx(values.max())
            assert "allowed" not in column
        else:
            assert column["kind"] == "category" and column["type"] == "string"
            assert sorted(column["allowed"]) == sorted(values.unique())
    assert {"email", "default", "gender"}.isdisjoint(c["name"] for c in inputs)
    outputs = signature["outputs"]
    assert outputs["task"] == "binary" and outputs["target"] == "default"
    assert outputs["labels"] == [0, 1]
    assert outputs["threshold"] == pytest.approx(trained.first.model.threshold)


def test_lineage_names_data_run_loopml_version_and_the_git_commit(trained):
    lineage = trained.first.version.lineage
    assert lineage["dataset"] == "credit@1" and lineage["run_id"] == trained.first.run_id
    assert lineage["loopml"] == loopml.__version__
    assert lineage["project"] == "credit"
    assert trained.second.version.lineage["dataset"] == "credit@2"
    if trained.commit is None:
        pytest.skip("git is not installed")
    assert lineage["git_commit"] == trained.commit
    if inside_git_repo(trained.plain_dir):
        pytest.skip(f"{trained.plain_dir} lies inside a git repository")
    assert trained.second.version.lineage["git_commit"] is None


@pytest.mark.slow
def test_no_raw_personal_value_in_signature_lineage_or_json(trained):
    for outcome in (trained.first, trained.second, trained.named):
        record = outcome.version
        _no_raw_email(json.dumps(record.signature), trained.emails)
        _no_raw_email(json.dumps(record.lineage, default=str), trained.emails)
        _no_raw_email(json.dumps(record.metrics), trained.emails)
    for args in (["list"], ["show", "credit"], ["show", "credit@1"], ["history", "credit"]):
        for json_flag in ([], ["--json"]):
            _no_raw_email(_cli(trained, "models", *args, *json_flag).stdout, trained.emails)


def test_a_name_with_a_slash_or_at_sign_is_refused_by_register(trained):
    for name in ("[red]x[/]", "team/credit", "a@b"):
        done = run_loopml("models", "register", trained.first.run_id, "--name", name,
                          home=trained.workspace.home)
        assert done.returncode == 2, (done.stdout, done.stderr)
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and name in lines[0], done.stderr
    for name in ("esc\x1b[31mred", "bidi\u202eevil", "tab\there"):  # never reach a terminal
        done = run_loopml("models", "register", trained.first.run_id, "--name", name,
                          home=trained.workspace.home)
        assert done.returncode == 2 and "must not contain" in done.stderr, done.stderr
        assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    with Registry.open(trained.workspace) as registry:
        assert "[red]x[/]" not in {m["name"] for m in registry.list()}


def test_register_refuses_a_run_that_stored_no_model(trained):
    from loopml.tracking import TrackingClient

    client = TrackingClient.from_workspace(trained.workspace)
    try:
        trials = [r.id for r in client.store.runs.list(project="credit") if r.name != "train"]
    finally:
        client.close()
    assert trials
    done = run_loopml("models", "register", trials[0], "--name", "credit",
                      home=trained.workspace.home)
    assert done.returncode == 2 and "stored no model" in done.stderr, done.stderr
    done = run_loopml("models", "register", "ffffffffffff", "--name", "credit",
                      home=trained.workspace.home)
    assert done.returncode == 2, done.stderr


@pytest.mark.parametrize("models_name", ["team/credit", "a@b"])
def test_a_model_name_the_registry_refuses_is_refused_before_training(
        credit_csv, tmp_path, models_name):
    from loopml.errors import InvalidInput
    from loopml.tracking import TrackingClient

    workspace = workspace_at(tmp_path / "ws")
    with pytest.raises((InvalidInput, ValueError), match="model name"):
        train(credit_project(credit_csv, models_name=models_name), workspace,
              project_dir=tmp_path)
    if workspace.exists():
        client = TrackingClient.from_workspace(workspace)
        try:
            assert client.store.runs.list(project="credit") == []
        finally:
            client.close()


# --- the command line -----------------------------------------------------------------------


def test_models_list_shows_every_model_with_latest_version_and_aliases(trained):
    listed = _strict_json(_cli(trained, "models", "list", "--json").stdout)
    by_name = {m["name"]: m for m in listed}
    assert set(by_name) == {"credit", "credit scorer", *ODD_NAMES}
    assert by_name["credit"]["versions"] == 2 and by_name["credit"]["latest"] == 2
    assert by_name["credit"]["aliases"] == {"champion": 2}
    assert by_name["credit scorer"]["aliases"] == {}
    text = _cli(trained, "models", "list").stdout
    assert "credit scorer" in text and "champion" in text


def test_models_show_name_lists_versions_newest_first(trained):
    shown = _strict_json(_cli(trained, "models", "show", "credit", "--json").stdout)
    assert [v["ref"] for v in shown] == ["credit@2", "credit@1"]
    assert shown[0]["aliases"] == ["champion"] and shown[1]["aliases"] == []
    assert shown[1]["run_id"] == trained.first.run_id
    text = _cli(trained, "models", "show", "credit").stdout
    assert "credit: 2 version(s)" in text and trained.first.run_id[:12] in text


def test_models_show_one_version_gives_artifacts_signature_and_lineage(trained):
    record = trained.first.version
    shown = _strict_json(_cli(trained, "models", "show", "credit@1", "--json").stdout)
    assert shown["ref"] == "credit@1" and shown["run_id"] == trained.first.run_id
    assert shown["artifacts"]["native"] == {"sha256": record.native_sha256,
                                            "size": record.native_size}
    assert shown["signature"] == record.signature
    assert shown["lineage"]["dataset"] == "credit@1"
    assert shown["lineage"]["git_commit"] == trained.commit
    by_alias = _strict_json(_cli(trained, "models", "show", "credit@champion", "--json").stdout)
    assert by_alias["ref"] == "credit@2"
    text = _cli(trained, "models", "show", "credit@1").stdout
    assert "credit@1" in text and record.native_sha256[:16] in text
    for column in record.signature["inputs"]:
        assert column["name"] in text


def test_models_history_lists_every_move_oldest_first(trained):
    events = _strict_json(_cli(trained, "models", "history", "credit", "--json").stdout)
    assert [(e["alias"], e["from_version"], e["to_version"], e["outcome"], e["actor"],
             e["reason"]) for e in events] == [
        ("champion", None, 1, "moved", "alice", "first model"),
        ("champion", 1, 2, "moved", "bob", "newer data [red]2[/]"),
    ]
    assert all(e["gates_passed"] is None for e in events)  # moved directly, no gates ran
    only = _cli(trained, "models", "history", "credit", "--alias", "challenger", "--json")
    assert _strict_json(only.stdout) == []
    text = _cli(trained, "models", "history", "credit").stdout
    assert "alice" in text and "newer data [red]2[/]" in text  # the reason shown literally
    assert text.index("first model") < text.index("newer data")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_model_name_with_odd_characters_prints_literally(trained, name):
    # A control character is shown as its escape sequence, never sent to the terminal.
    visible = name.replace("\x1b", "\\x1b")
    listed = _cli(trained, "models", "list").stdout
    shown = _cli(trained, "models", "show", f"{name}@1").stdout
    versions = _cli(trained, "models", "show", name).stdout
    for text in (listed, shown, versions):
        assert visible in text
        assert "\x1b" not in text
    assert f"{visible}@1" in shown
    as_json = _strict_json(_cli(trained, "models", "show", f"{name}@1", "--json").stdout)
    assert as_json["name"] == name


@pytest.mark.parametrize("args", [
    ["show", ""], ["show", "x@"], ["show", "nosuch@1"], ["show", "credit@99"],
    ["show", "credit@bad alias!"], ["show", "credit@challenger"], ["show", "nosuch"],
    ["history", "nosuch"], ["history", "credit", "--alias", "bad alias!"],
])
def test_a_bad_reference_is_one_line_and_exit_code_2(trained, args):
    done = run_loopml("models", *args, home=trained.workspace.home)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("loopml: error:"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


# --- aliases and history on both backends ---------------------------------------------------


def _versions_of_m(trained: Trained, store_url: str, tmp_path: Path) -> Workspace:
    """Return a workspace on ``store_url`` whose model ``m`` has credit@1 and credit@2 as v1, v2.

    The versions point at the trained artifacts (same artifact folder, same signing key).
    """
    workspace = workspace_at(trained.workspace.home, store_url,
                             artifacts=trained.workspace.artifacts_uri)
    store = Store(store_url).connect()
    for outcome in (trained.first, trained.second):
        record = outcome.version
        store.models.add_version(
            "m", source=record.source, run_id=record.run_id, task=record.task,
            native_sha256=record.native_sha256, native_size=record.native_size,
            signature=record.signature, lineage=record.lineage, metrics=record.metrics,
            created_by="tester")
    return workspace


def test_move_alias_is_compare_and_set_and_history_keeps_every_attempt(
        trained, store_url, tmp_path):
    _versions_of_m(trained, store_url, tmp_path)
    models = Store(store_url).connect().models
    first = models.move_alias("m", "champion", 1, expected=None, actor="alice",
                              reason="first", outcome="moved")
    assert (first.from_version, first.to_version, first.outcome) == (None, 1, "moved")
    assert models.aliases("m") == {"champion": 1}
    second = models.move_alias("m", "champion", 2, expected=1, actor="bob", reason="better",
                               outcome="moved")
    assert (second.from_version, second.to_version) == (1, 2)
    assert models.aliases("m") == {"champion": 2}
    assert models.get("m", "champion").version == 2

    # A writer whose gates compared against version 1 is now stale.
    with pytest.raises(ConstraintError, match="moved to version 2 by someone else"):
        models.move_alias("m", "champion", 1, expected=1, actor="carol", reason="rollback",
                          outcome="moved")
    assert models.aliases("m") == {"champion": 2}  # nothing moved
    with pytest.raises(ConstraintError):  # the alias exists: "must not exist yet" is stale too
        models.move_alias("m", "champion", 1, expected=None, actor="dave", reason=None,
                          outcome="forced")
    assert models.aliases("m") == {"champion": 2}

    history = models.history("m")
    assert [(e.from_version, e.to_version, e.outcome, e.actor) for e in history] == [
        (None, 1, "moved", "alice"), (1, 2, "moved", "bob"), (2, 1, "refused", "carol"),
        (2, 1, "refused", "dave")]
    assert history[0].reason == "first" and history[1].reason == "better"
    assert "rollback" in history[2].reason and "nothing moved" in history[2].reason
    assert [e.id for e in history] == sorted(e.id for e in history)
    assert all(a.at <= b.at for a, b in zip(history, history[1:], strict=False))
    assert models.history("m", "champion") == history
    assert models.history("m", "challenger") == []


def test_a_refusal_can_be_recorded_without_moving(trained, store_url, tmp_path):
    _versions_of_m(trained, store_url, tmp_path)
    models = Store(store_url).connect().models
    event = models.move_alias("m", "champion", 2, expected=None, actor="ci",
                              reason="gates failed: beats_champion", outcome="refused")
    assert event.outcome == "refused"
    assert models.aliases("m") == {}
    assert [(e.to_version, e.outcome, e.reason) for e in models.history("m")] == [
        (2, "refused", "gates failed: beats_champion")]


def test_aliases_are_independent_and_a_missing_version_moves_nothing(
        trained, store_url, tmp_path):
    _versions_of_m(trained, store_url, tmp_path)
    models = Store(store_url).connect().models
    models.move_alias("m", "champion", 1, expected=None, actor="a", reason=None,
                      outcome="moved")
    models.move_alias("m", "challenger", 2, expected=None, actor="a", reason=None,
                      outcome="moved")
    assert models.aliases("m") == {"champion": 1, "challenger": 2}
    assert models.get("m", "1").aliases == ("champion",)
    with pytest.raises(NotFound):
        models.move_alias("m", "champion", 7, expected=1, actor="a", reason=None,
                          outcome="moved")
    with pytest.raises(NotFound):
        models.move_alias("nosuch", "champion", 1, expected=None, actor="a", reason=None,
                          outcome="moved")
    assert models.aliases("m") == {"champion": 1, "challenger": 2}
    assert len(models.history("m")) == 2


def test_load_model_by_alias_version_and_name_loads_that_version(trained, store_url, tmp_path):
    workspace = _versions_of_m(trained, store_url, tmp_path)
    frame = trained.frame
    one = trained.first.model.predict_proba(frame)
    two = trained.second.model.predict_proba(frame)
    assert not np.allclose(one, two)  # the two versions can be told apart
    models = Store(store_url).connect().models
    models.move_alias("m", "champion", 1, expected=None, actor="a", reason=None,
                      outcome="moved")

    def proba(ref: str) -> np.ndarray:
        return loopml.load_model(ref, workspace=workspace).predict_proba(frame)

    np.testing.assert_array_equal(proba("m@champion"), one)
    np.testing.assert_array_equal(proba("m@1"), one)
    np.testing.assert_array_equal(proba("m@2"), two)
    np.testing.assert_array_equal(proba("m"), two)  # the latest
    np.testing.assert_array_equal(proba("m@latest"), two)
    models.move_alias("m", "champion", 2, expected=1, actor="a", reason=None, outcome="moved")
    np.testing.assert_array_equal(proba("m@champion"), two)
    assert list(loopml.load_model("m@champion", workspace=workspace).predict(frame)) == \
        list(trained.second.model.predict(frame))
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        loopml.load_model("m@challenger", workspace=workspace)
    with pytest.raises(NotFound, match="no version 3"):
        loopml.load_model("m@3", workspace=workspace)


def test_an_alias_named_latest_is_refused_or_readable(sqlite_url):
    from loopml.errors import InvalidInput

    models = Store(sqlite_url).connect().models
    for number in (1, 2):
        models.add_version("m", source="run", run_id=str(number), task="binary",
                           native_sha256=None, native_size=None, signature={}, lineage={},
                           metrics={}, created_by="tester")
    try:
        models.move_alias("m", "latest", 1, expected=None, actor="a", reason=None,
                          outcome="moved")
    except InvalidInput:
        return  # refused as a reserved word: fine
    assert models.resolve("m@latest").version == models.aliases("m")["latest"]
