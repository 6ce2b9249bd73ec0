"""The retraining policy: alert → labelled production rows → challenger → gates → champion."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from retrain_helpers import (
    MODEL,
    T0,
    champion_workspace,
    copy_home,
    input_names,
    project,
    raise_alert,
    shifted,
    write_log,
)

from loopml.monitor.retrain import ACTOR, retrain_model
from loopml.monitor.retrain_data import LabelledRows, holdout_mask, labelled_rows, typed_rows
from loopml.registry.registry import Registry


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return champion_workspace(tmp_path_factory.mktemp("champion"))


@pytest.fixture
def workspace(champion_home, tmp_path):
    return copy_home(champion_home, tmp_path / "home")


def _state(workspace):
    """Return (champion version, every version, alias events) of the model."""
    with Registry.open(workspace) as registry:
        return (registry.models.aliases(MODEL)["champion"],
                sorted(v.version for v in registry.versions(MODEL)), registry.history(MODEL))


def _check_scores(workspace, comparison, *, rows):
    """Check the gate's ROC-AUCs against sklearn's on the holdout rows."""
    from sklearn.metrics import roc_auc_score

    with Registry.open(workspace) as registry:
        holdout = registry.catalog.load("credit-holdout@1", project=MODEL)
        assert len(holdout) == rows
        for who, version in (("champion", 1), ("challenger", 2)):
            record = registry.get(f"{MODEL}@{version}")
            model = registry.load(record)
            inputs = [c["name"] for c in record.signature["inputs"]]
            score = roc_auc_score(holdout["default"], model.predict_proba(holdout[inputs])[:, 1])
            assert score == pytest.approx(comparison[who], abs=1e-9)


def _retrain_runs(workspace):
    from loopml.tracking import TrackingClient

    client = TrackingClient.from_workspace(workspace)
    try:
        return [client.run_detail(r.id) for r in client.list_runs(project=MODEL, limit=None)
                if r.name == "retrain"]
    finally:
        client.close()


@pytest.mark.slow
def test_a_better_challenger_is_promoted_and_the_history_says_why(workspace):
    write_log(workspace, shifted(1200), inputs=input_names(workspace))
    alert = raise_alert(workspace, kind="performance")
    outcome = retrain_model(workspace, project(None))

    assert outcome.status == "promoted", outcome.message
    assert (outcome.champion, outcome.challenger, outcome.alerts) == (1, 2, [alert])
    rows = outcome.rows
    assert rows["recent"] == rows["new"] == 1200 and rows["train"] + rows["holdout"] == 1200
    assert 0.2 < rows["holdout"] / 1200 < 0.4
    assert outcome.datasets == {"source": "credit@1", "training": "credit@2",
                                "holdout": "credit-holdout@1"}
    champion, versions, history = _state(workspace)
    assert champion == 2 and versions == [1, 2]
    event = history[-1]
    assert (event.outcome, event.actor, event.from_version, event.to_version) == \
        ("moved", ACTOR, 1, 2)
    assert f"performance alert #{alert}" in event.reason and "credit@2" in event.reason
    assert "credit-holdout@1" in event.reason
    gate = {g["name"]: g for g in event.report["gates"]}["beats_champion"]
    assert gate["passed"]
    # Better on recent rows, by the report and by sklearn on the holdout itself.
    comparison = event.report["comparison"]
    assert comparison["challenger"] > comparison["champion"] + 0.1
    _check_scores(workspace, comparison, rows=rows["holdout"])
    with Registry.open(workspace) as registry:
        challenger = registry.get(f"{MODEL}@2")
        assert challenger.lineage["dataset"] == "credit@2"
        # recent+training: the champion's rows and the recent training part, typed as before
        data = registry.catalog.get("credit@2", project=MODEL)
        assert data.num_rows == 600 + rows["train"]
        assert [c["name"] for c in data.schema] == \
            [c["name"] for c in registry.catalog.get("credit@1", project=MODEL).schema]
        assert {c["name"]: c["type"] for c in data.schema}["age"] == "int64"
        assert registry.catalog.get("credit-holdout@1", project=MODEL).num_rows == \
            rows["holdout"]
        # the challenger takes exactly the champion's inputs
        assert [c["name"] for c in challenger.signature["inputs"]] == input_names(workspace)
    (run,) = _retrain_runs(workspace)
    assert run.tags["outcome"] == "promoted" and run.tags["challenger"] == "2"
    assert run.tags["alerts"] == str(alert) and run.tags["champion"] == "1"
    assert run.tags["training_data"] == "credit@2"
    # The alert came before the new champion: nothing more to do.
    again = retrain_model(workspace, project(None))
    assert again.status == "nothing_to_do" and "champion v2 was promoted at" in again.message


@pytest.mark.slow
def test_a_challenger_failing_a_gate_leaves_the_champion_and_says_why(workspace):
    write_log(workspace, shifted(1200), inputs=input_names(workspace))
    raise_alert(workspace)
    gates = {"metrics": ["roc_auc >= 0.999"], "data_contract": False}
    outcome = retrain_model(workspace, project(None, gates=gates))

    assert outcome.status == "refused" and not outcome.promoted
    assert outcome.challenger == 2
    assert [f["gate"] for f in outcome.failed] == ["metric roc_auc >= 0.999"]
    assert "roc_auc" in outcome.failed[0]["detail"]
    assert "stays at version 1" in outcome.message and "metric" in outcome.message
    champion, versions, history = _state(workspace)
    assert champion == 1 and versions == [1, 2]
    assert (history[-1].outcome, history[-1].actor) == ("refused", ACTOR)
    assert "gates failed: metric roc_auc >= 0.999" in history[-1].reason

    # The alert is handled and the rows used: running again trains nothing.
    again = retrain_model(workspace, project(None, gates=gates))
    assert again.status == "nothing_to_do"
    forced = retrain_model(workspace, project(None, gates=gates), force=True)
    assert forced.status == "too_few_rows" and forced.rows["new"] == 0
    # New labelled rows and a new alert: a retrain again, on every row since the champion.
    write_log(workspace, shifted(400, seed=21), inputs=input_names(workspace), start=5000,
              label_at=T0 + dt.timedelta(days=3))
    raise_alert(workspace, start_key=1)
    third = retrain_model(workspace, project(None, gates=gates))
    assert third.status == "refused"
    assert (third.rows["recent"], third.rows["new"]) == (1600, 400)
    assert _state(workspace)[0] == 1


def test_no_alert_means_nothing_to_do(workspace):
    write_log(workspace, shifted(400), inputs=input_names(workspace))
    outcome = retrain_model(workspace, project(None))
    assert outcome.status == "nothing_to_do"
    assert outcome.message.startswith("nothing to do: no drift/performance alert since "
                                      "champion v1 was promoted at ")
    assert _state(workspace)[:2] == (1, [1])
    assert _retrain_runs(workspace) == []


def test_an_alert_of_a_kind_not_in_retrain_on_is_ignored(workspace):
    write_log(workspace, shifted(400), inputs=input_names(workspace))
    raise_alert(workspace, kind="quality")
    outcome = retrain_model(workspace, project(None))
    assert outcome.status == "nothing_to_do"


def test_too_few_labelled_rows_trains_nothing_and_gives_the_counts(workspace):
    write_log(workspace, shifted(500), inputs=input_names(workspace), labelled=120)
    raise_alert(workspace)
    config = project(None, retrain={"min_new_labeled_rows": 200})
    for force in (False, True):  # --force skips the trigger, not the minimum
        outcome = retrain_model(workspace, config, force=force)
        assert outcome.status == "too_few_rows"
        assert outcome.rows["new"] == 120 and outcome.rows["predictions"] == 500
        assert "120" in outcome.message and "needs 200" in outcome.message
    assert _state(workspace)[:2] == (1, [1])


def test_gates_that_cannot_pass_on_logged_rows_block_before_training(workspace):
    # The default gates check the data contract, which says customer_id, gender and email are
    # never missing; fairness by gender needs gender: the log holds neither.
    write_log(workspace, shifted(500), inputs=input_names(workspace))
    raise_alert(workspace)
    gates = {"fairness": {"metric": "demographic_parity_difference", "max": 0.2}}
    outcome = retrain_model(workspace, project(None, gates=gates))
    assert outcome.status == "blocked"
    assert [b["gate"] for b in outcome.failed] == ["fairness", "data_contract", "data_contract"]
    assert "'gender'" in outcome.failed[0]["detail"]
    absent, ranges = outcome.failed[1]["detail"], outcome.failed[2]["detail"]
    assert "'customer_id'" in absent and "nullable: true" in absent
    # The shifted customers are poorer than any the contract knows: the gate would refuse them.
    assert "'income': values below the minimum" in ranges and "widen the contract" in ranges
    assert _state(workspace)[:2] == (1, [1])  # nothing trained, nothing moved
    (run,) = _retrain_runs(workspace)
    assert run.tags["outcome"] == "blocked"


def test_no_champion_is_bad_input(tmp_path):
    from loopml.errors import InvalidInput
    from loopml.workspace import Workspace

    workspace = Workspace.from_env(tmp_path / "home", env={})
    workspace.open(create=True)
    with pytest.raises(InvalidInput, match="no registered model|does not exist"):
        retrain_model(workspace, project(None), force=True)


# -- the data steps -------------------------------------------------------------------------

def test_labelled_rows_keep_the_latest_prediction_and_count_the_rest(tmp_path):
    from loopml.serve.predlog import PredictionLog

    def prediction(request, row, seconds, model=MODEL, age=40):
        return {"request_id": request, "row": row, "ts": T0 + dt.timedelta(seconds=seconds),
                "model": model, "version": 1, "flavour": "native", "latency_ms": 1.0,
                "prediction": 0, "probabilities": [0.5, 0.5], "inputs": {"age": age}}

    def label(request, row, value):
        return {"request_id": request, "row": row, "label": value,
                "ts": T0 + dt.timedelta(days=1)}

    for kind, records in (
            ("predictions", [prediction("a", 0, 5), prediction("a", 1, 5),
                             prediction("b", 0, 1, age=1), prediction("c", 0, 2),
                             prediction("other", 0, 3, model="another")]),
            ("predictions", [prediction("b", 0, 9, age=2), prediction("d", 0, 4)]),
            ("feedback", [label("a", None, 1), label("b", 0, 0), label("d", 0, 7),
                          label("zz", 0, 1)])):
        log = PredictionLog(tmp_path, kind=kind).start()
        assert log.write(records) and log.close()
    seen = []
    rows = labelled_rows(tmp_path, model=MODEL, task="binary", classes=[0, 1],
                         progress=lambda done, total: seen.append((done, total)))
    got = rows.table.to_pydict()
    assert list(zip(got["request_id"], got["row"], strict=True)) == [("a", 0), ("a", 1), ("b", 0)]
    assert rows.labels == [1, 1, 0]
    assert '"age":2' in got["inputs"][2].replace(" ", "")  # the later of b's two predictions
    assert (rows.predictions, rows.repeated, rows.invalid_labels, rows.unlabelled) == \
        (6, 1, 1, 2)
    assert seen[-1] == (2, 2)


@pytest.mark.parametrize("parser", ["logscan", "fallback"])
def test_logged_inputs_are_cast_back_to_the_dataset_types(parser, monkeypatch):
    if parser == "fallback":  # as before the monitor's parser existed
        monkeypatch.setitem(sys.modules, "loopml.monitor.logscan", None)
    table = pa.table({
        "request_id": ["a", "b", "c"], "row": [0, 0, 1],
        "ts": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")), "version": [1, 1, 1],
        "inputs": ['{"age": 41, "income": 1.5, "city": 3, "ok": true, "at": "2026-01-02"}',
                   '{"age": 41.5, "income": null, "city": "Lyon", "ok": 0, "at": 0}',
                   '{"age": "7", "income": "NaN", "city": null, "ok": "x", "at": "bad"}'],
        "label_ts": pa.array([T0] * 3, pa.timestamp("us", tz="UTC"))})
    rows = LabelledRows(table=table, labels=[1, 0, 1], predictions=3, unlabelled=0,
                        invalid_labels=0, repeated=0)
    schema = pa.schema([("customer_id", pa.int64()), ("age", pa.int64()),
                        ("income", pa.float64()), ("city", pa.string()), ("ok", pa.bool_()),
                        ("at", pa.timestamp("us")), ("default", pa.int64())])
    kinds = {"age": "number", "income": "number", "city": "category", "ok": "number",
             "at": "datetime"}
    typed = typed_rows(rows, schema, target="default", kinds=kinds)
    assert typed.table.schema.names == schema.names
    assert typed.table.schema.types == schema.types
    got = typed.table.to_pydict()
    assert got["customer_id"] == [None, None, None] and typed.absent == ["customer_id"]
    assert got["age"] == [41, None, None]  # 41.5 is no whole number; "7" is text
    assert got["income"][0] == 1.5 and got["income"][1:] == [None, None]
    assert got["city"] == ["3", "Lyon", None]
    assert got["ok"] == [True, False, None]
    assert got["at"] == [dt.datetime(2026, 1, 2), dt.datetime(1970, 1, 1), None]
    assert got["default"] == [1, 0, 1]
    assert typed.invalid == {"age": 2, "income": 1, "ok": 1, "at": 1}


def test_the_holdout_split_is_seeded_stable_and_near_its_share():
    ids = [f"r{i}" for i in range(4000)]
    rows = [i % 3 for i in range(4000)]
    first = holdout_mask(ids, rows, share=0.3, seed=7)
    assert (first == holdout_mask(ids, rows, share=0.3, seed=7)).all()
    assert abs(first.mean() - 0.3) < 0.03
    # A row keeps its part whatever else is in the batch.
    assert (holdout_mask(ids[1000:], rows[1000:], share=0.3, seed=7) == first[1000:]).all()
    assert (holdout_mask(ids, rows, share=0.3, seed=8) != first).any()
