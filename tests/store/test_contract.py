"""The store contract: every backend (SQLite, PostgreSQL) must pass these same tests."""

from __future__ import annotations

import math

import pytest

from loopml.errors import InvalidInput, NotFound


def test_create_and_get_run(store):
    record = store.runs.create(project="credit", name="baseline", tags={"team": "risk"})
    fetched = store.runs.get(record.id)
    assert fetched.id == record.id and len(record.id) == 32
    assert (fetched.project, fetched.name, fetched.status) == ("credit", "baseline", "RUNNING")
    assert fetched.start_time.tzinfo is not None
    assert abs((fetched.start_time - record.start_time).total_seconds()) < 1e-3
    assert store.runs.detail(record.id).tags == {"team": "risk"}


def test_projects_are_shared_by_name(store):
    a = store.runs.create(project="p", name="a")
    b = store.runs.create(project="p", name="b")
    store.runs.create(project="q", name="c")
    assert {r.id for r in store.runs.list(project="p")} == {a.id, b.id}


def test_run_id_prefix_resolves_and_unknown_id_is_not_found(store):
    record = store.runs.create(project="p", name="a")
    assert store.runs.get(record.id[:8]).id == record.id
    with pytest.raises(NotFound, match="no run with id 'ffffffffffff'"):
        store.runs.get("ffffffffffff")
    with pytest.raises(NotFound):
        store.runs.get("not-hex")


def test_finish_sets_status_error_and_end(store):
    record = store.runs.create(project="p", name="a")
    store.runs.finish(record.id, status="FAILED", error="ValueError: boom")
    fetched = store.runs.get(record.id)
    assert fetched.status == "FAILED" and fetched.error == "ValueError: boom"
    assert fetched.end_time is not None and fetched.duration_s >= 0
    with pytest.raises(InvalidInput, match="FINISHED, FAILED, KILLED"):
        store.runs.finish(record.id, status="DONE")
    with pytest.raises(NotFound):
        store.runs.finish("0" * 32, status="FINISHED")


def test_params_are_immutable_but_relogging_the_same_value_is_fine(store):
    run = store.runs.create(project="p", name="a")
    store.runs.log_params(run.id, {"C": 1.0, "kernel": "rbf", "depth": None})
    store.runs.log_params(run.id, {"C": 1.0})
    with pytest.raises(InvalidInput, match="param 'C' .* already '1.0'"):
        store.runs.log_params(run.id, {"C": 2.0})
    assert store.runs.detail(run.id).params == {"C": "1.0", "depth": "None", "kernel": "rbf"}


def test_tags_overwrite(store):
    run = store.runs.create(project="p", name="a")
    store.runs.set_tags(run.id, {"stage": "dev"})
    store.runs.set_tags(run.id, {"stage": "prod", "owner": "ana"})
    assert store.runs.detail(run.id).tags == {"owner": "ana", "stage": "prod"}


@pytest.mark.parametrize("bad", ["", "x" * 251, 3, None])
def test_bad_keys_are_rejected(store, bad):
    run = store.runs.create(project="p", name="a")
    with pytest.raises(InvalidInput, match="param name"):
        store.runs.log_params(run.id, {bad: 1})


def test_metric_batches_history_and_latest(store):
    run = store.runs.create(project="p", name="a")
    other = store.runs.create(project="p", name="b")
    rows = [(run.id, "loss", step, 1.0 / (step + 1), 1000 + step) for step in range(500)]
    rows += [(run.id, "auc", 0, 0.5, 1), (other.id, "loss", 3, 9.0, 1)]
    store.metrics.write_batch(rows)
    # A later batch with an older step must not move "latest" backwards.
    store.metrics.write_batch([(run.id, "loss", 10, 123.0, 5000), (run.id, "auc", 1, None, 2)])
    history = store.metrics.history(run.id, "loss")
    assert [p.step for p in history][:3] == [0, 1, 2] and len(history) == 501
    assert store.metrics.count(run.id) == 503
    latest = store.metrics.latest([run.id, other.id])
    assert latest[run.id]["loss"].step == 499
    assert latest[run.id]["loss"].value == pytest.approx(1 / 500)
    assert math.isnan(latest[run.id]["auc"].value)  # NaN survives both backends
    assert latest[other.id]["loss"].value == 9.0


def test_list_filters_order_and_limit(store):
    first = store.runs.create(project="p", name="first")
    second = store.runs.create(project="p", name="second")
    child = store.runs.create(project="p", name="child", parent_id=second.id)
    store.runs.finish(first.id, status="FINISHED")
    assert [r.id for r in store.runs.list(project="p")] == [child.id, second.id, first.id]
    assert [r.id for r in store.runs.list(top_level=True)] == [second.id, first.id]
    assert [r.id for r in store.runs.list(status="FINISHED")] == [first.id]
    assert [r.id for r in store.runs.list(parent_id=second.id)] == [child.id]
    assert len(store.runs.list(limit=1)) == 1
    with pytest.raises(InvalidInput, match="status 'DONE'"):
        store.runs.list(status="DONE")


def test_unknown_parent_is_not_found(store):
    with pytest.raises(NotFound):
        store.runs.create(project="p", name="child", parent_id="0" * 32)


def test_delete_removes_run_children_and_everything_logged(store):
    parent = store.runs.create(project="p", name="parent")
    child = store.runs.create(project="p", name="child", parent_id=parent.id)
    grandchild = store.runs.create(project="p", name="gc", parent_id=child.id)
    keep = store.runs.create(project="p", name="keep")
    for run in (parent, child, grandchild, keep):
        store.runs.log_params(run.id, {"a": 1})
        store.metrics.write_batch([(run.id, "m", 0, 1.0, 1)])
        store.artifacts.record(run.id, name="f.txt", sha256="a" * 64, size=1,
                               media_type="text/plain")
    deleted = store.runs.delete(parent.id[:10])
    assert set(deleted) == {parent.id, child.id, grandchild.id}
    assert [r.id for r in store.runs.list()] == [keep.id]
    for run in (parent, child, grandchild):
        assert store.metrics.count(run.id) == 0
        assert store.artifacts.list(run.id) == []
    assert store.metrics.count(keep.id) == 1
    assert store.artifacts.is_referenced("a" * 64)


def test_artifact_index_records_replaces_and_reports_missing(store):
    run = store.runs.create(project="p", name="a")
    store.artifacts.record(run.id, name="model.pkl", sha256="a" * 64, size=3,
                           media_type="application/octet-stream")
    store.artifacts.record(run.id, name="model.pkl", sha256="b" * 64, size=4,
                           media_type="application/octet-stream")
    assert [(a.name, a.sha256) for a in store.artifacts.list(run.id)] == [("model.pkl", "b" * 64)]
    with pytest.raises(NotFound, match=r"no artifact 'x.png' \(it has: model.pkl\)"):
        store.artifacts.get(run.id, "x.png")


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_artifact_names_cannot_look_like_paths_out(store, name):
    run = store.runs.create(project="p", name="a")
    with pytest.raises(InvalidInput, match="artifact name"):
        store.artifacts.record(run.id, name=name, sha256="a" * 64, size=1, media_type="x")
