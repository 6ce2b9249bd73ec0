"""Runs through the tracking client: lifecycle, params, metrics, artifacts."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import InvalidInput, StoreError
from loopml.tracking.buffer import MetricBuffer


def test_block_that_ends_normally_is_finished_with_everything_logged(client):
    with client.start_run("baseline", project="credit") as run:
        run.log_params({"C": 0.5, "penalty": "l2"})
        run.set_tag("owner", "ana")
        for step in range(1000):
            run.log_metric("loss", 1 / (step + 1))
        run.log_metrics({"auc": 0.91, "f1": 0.8})
    detail = client.run_detail(run.id)
    assert detail.run.status == "FINISHED" and detail.run.end_time is not None
    assert detail.params == {"C": "0.5", "penalty": "l2"} and detail.tags == {"owner": "ana"}
    assert client.store.metrics.count(run.id) == 1002
    assert detail.metrics["loss"].step == 999 and detail.metrics["auc"].value == 0.91
    history = client.metric_history(run.id, "loss")
    assert [p.value for p in history] == [1 / (s + 1) for s in range(1000)]


def test_block_that_raises_is_failed_with_the_error(client):
    with pytest.raises(ZeroDivisionError), client.start_run("bad", project="p") as run:
        run.log_metric("loss", 1.0)
        1 / 0  # noqa: B018
    record = client.get_run(run.id)
    assert record.status == "FAILED" and record.error == "ZeroDivisionError: division by zero"
    assert client.store.metrics.count(run.id) == 1  # points logged before the error are kept


def test_ctrl_c_marks_the_run_killed(client):
    with pytest.raises(KeyboardInterrupt), client.start_run("interrupted", project="p") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.id).status == "KILLED"


def test_nested_runs_get_the_active_run_as_parent(client):
    with loopml.start_run("search", project="credit", client=client) as parent:
        assert loopml.active_run() is parent
        with loopml.start_run("trial-0") as child:
            assert loopml.active_run() is child
        assert loopml.active_run() is parent
    assert loopml.active_run() is None
    record = client.get_run(child.id)
    assert record.parent_id == parent.id and record.project == "credit"
    assert client.run_detail(parent.id).children == [child.id]


@pytest.mark.parametrize("value", ["0.5", b"1", None, True, [1.0], {"a": 1}, 1 + 2j])
def test_metric_value_that_is_not_a_number_is_rejected(client, value):
    with client.start_run("r", project="p") as run, pytest.raises(
        InvalidInput, match="metric 'm' must be a number"
    ):
        run.log_metric("m", value)


def test_numpy_numbers_and_nan_are_accepted(client):
    with client.start_run("r", project="p") as run:
        run.log_metric("a", np.float32(0.25))
        run.log_metric("b", np.int64(3), step=np.int64(7))
        run.log_metric("c", float("nan"))
    latest = client.run_detail(run.id).metrics
    assert latest["a"].value == 0.25 and (latest["b"].value, latest["b"].step) == (3.0, 7)
    assert np.isnan(latest["c"].value)


@pytest.mark.parametrize("step", [-1, 1.5, "3", True])
def test_bad_steps_are_rejected(client, step):
    with client.start_run("r", project="p") as run, pytest.raises(InvalidInput, match="step"):
        run.log_metric("m", 1.0, step=step)


def test_steps_continue_per_key(client):
    with client.start_run("r", project="p") as run:
        run.log_metric("m", 1.0)
        run.log_metric("m", 2.0, step=10)
        run.log_metric("m", 3.0)
        run.log_metric("other", 4.0)
    assert [p.step for p in client.metric_history(run.id, "m")] == [0, 10, 11]
    assert client.metric_history(run.id, "other")[0].step == 0


def test_an_ended_run_refuses_more_logging(client):
    with client.start_run("r", project="p") as run:
        pass
    with pytest.raises(InvalidInput, match="has ended"):
        run.log_metric("m", 1.0)
    with pytest.raises(InvalidInput, match="has ended"):
        run.log_params({"a": 1})


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_buffer_flushes_on_size_without_being_asked(store, artifacts):
    from loopml.tracking import TrackingClient

    client = TrackingClient(store, artifacts, batch_size=100, flush_interval_s=60)
    run = client.start_run("r", project="p")
    for step in range(250):
        run.log_metric("m", float(step))
    assert _wait_for(lambda: store.metrics.count(run.id) >= 200)
    run.end()
    assert store.metrics.count(run.id) == 250
    client.close()


def test_buffer_flushes_on_time_without_being_asked(store, artifacts):
    from loopml.tracking import TrackingClient

    client = TrackingClient(store, artifacts, batch_size=10_000, flush_interval_s=0.1)
    run = client.start_run("r", project="p")
    for step in range(3):
        run.log_metric("m", float(step))
    assert _wait_for(lambda: store.metrics.count(run.id) == 3)
    run.end()
    client.close()


def test_buffer_keeps_points_when_a_write_fails_and_retries_them():
    written, attempts = [], []

    def flaky_write(rows):
        attempts.append(len(rows))
        if len(attempts) == 1:
            raise OSError("store briefly unavailable")
        written.extend(rows)

    buffer = MetricBuffer(flaky_write, batch_size=10_000, interval_s=60)
    for step in range(5):
        buffer.add(("r", "m", step, float(step), 0))
    with pytest.raises(StoreError, match="could not write 5 metric points"):
        buffer.flush()
    buffer.add(("r", "m", 5, 5.0, 0))
    assert buffer.flush() == 6
    assert [row[2] for row in written] == [0, 1, 2, 3, 4, 5]  # order kept across the retry
    buffer.close()


def test_log_artifact_accepts_files_folders_bytes_frames_figures_and_dicts(client, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "model.txt").write_text("weights")
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    (tmp_path / "folder" / "a.txt").write_text("a")
    (tmp_path / "folder" / "sub" / "b.txt").write_text("b")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None]})
    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    with client.start_run("r", project="p") as run:
        run.log_artifact(tmp_path / "model.txt")
        run.log_artifact(str(tmp_path / "folder"))
        run.log_artifact(b"\x00\x01", name="weights.bin")
        run.log_artifact(frame, "frame.parquet")
        run.log_artifact(frame, "frame.csv")
        run.log_artifact(figure, "plot.png")
        run.log_artifact({"auc": 0.9}, "summary.json")
    plt.close(figure)
    names = [a.name for a in client.run_detail(run.id).artifacts]
    assert names == ["folder/a.txt", "folder/sub/b.txt", "frame.csv", "frame.parquet",
                     "model.txt", "plot.png", "summary.json", "weights.bin"]
    assert client.load_artifact(run.id, "model.txt") == b"weights"
    assert client.load_artifact(run.id, "folder/sub/b.txt") == b"b"
    pd.testing.assert_frame_equal(
        pd.read_parquet(io.BytesIO(client.load_artifact(run.id, "frame.parquet"))), frame
    )
    assert client.load_artifact(run.id, "plot.png").startswith(b"\x89PNG")
    assert json.loads(client.load_artifact(run.id, "summary.json")) == {"auc": 0.9}
    out = client.download_artifact(run.id, "weights.bin", tmp_path / "dl" / "w.bin")
    assert out.read_bytes() == b"\x00\x01"


@pytest.mark.parametrize(
    ("obj", "name", "match"),
    [
        (b"x", None, "needs a name"),
        (object(), None, "cannot log an object of type object"),
        ("/no/such/file", None, "no such file or folder"),
        (b"x", "../escape", "artifact name"),
        (pd.DataFrame({"a": [1]}), "frame.xlsx", "parquet or .csv"),
    ],
)
def test_log_artifact_bad_input(client, obj, name, match):
    with client.start_run("r", project="p") as run, pytest.raises(InvalidInput, match=match):
        run.log_artifact(obj, name)


def test_start_run_uses_the_workspace_from_the_environment(workspace_env):
    with loopml.start_run("env-run", project="envp") as run:
        run.log_metric("m", 1.0)
    client = loopml.tracking.default_client()
    assert client.get_run(run.id).status == "FINISHED"
    assert (workspace_env / "loopml.db").is_file()
    assert (workspace_env / "artifacts" / "objects").is_dir()


def test_a_run_deleted_while_buffered_does_not_block_other_runs(store, artifacts):
    from loopml.tracking import TrackingClient

    client = TrackingClient(store, artifacts, batch_size=10_000, flush_interval_s=60)
    doomed = client.start_run("doomed", project="p")
    kept = client.start_run("kept", project="p")
    doomed.log_metric("m", 1.0)
    kept.log_metric("m", 2.0)
    store.runs.delete(doomed.id)  # e.g. `loopml runs delete` from another shell
    with pytest.warns(RuntimeWarning, match="dropped 1 metric points"):
        kept.end()
    assert store.metrics.count(kept.id) == 1
    later = client.start_run("later", project="p")
    later.log_metric("m", 3.0)
    later.end()
    assert store.metrics.count(later.id) == 1
    client.close()


def test_steps_and_timestamps_must_fit_64_bits(client):
    with client.start_run("r", project="p") as run:
        with pytest.raises(InvalidInput, match="between 0 and 2\\*\\*63"):
            run.log_metric("m", 1.0, step=2**63)
        with pytest.raises(InvalidInput, match="timestamp_ms"):
            run.log_metric("m", 1.0, timestamp_ms=1.5)


def test_writes_to_a_deleted_run_are_loopml_errors(client):
    from loopml.errors import ConstraintError

    run = client.start_run("r", project="p")
    client.delete_run(run.id)
    with pytest.raises(ConstraintError, match="refused a write"):
        run.log_params({"a": 1})
