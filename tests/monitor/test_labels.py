"""Labels from the feedback log: latest per row, joined to predictions, counted when odd."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from loopml.monitor.labels import (
    LABELS_SCHEMA,
    decode_labels,
    dedupe_labels,
    join_labels,
    latest_labels,
    unknown_labels,
)
from loopml.serve.predlog import PredictionLog

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _feedback(folder, records):
    """Write ``records`` as one feedback segment (as the server's feedback endpoint does)."""
    log = PredictionLog(folder, kind="feedback").start()
    assert log.write(records)
    assert log.close()


def _label(request_id, row, label, minutes=0):
    return {"request_id": request_id, "row": row, "label": label,
            "ts": T0 + dt.timedelta(minutes=minutes)}


def _predictions(rows):
    """Return a predictions table of (request_id, row) pairs."""
    return pa.table({"request_id": [r for r, _ in rows], "row": [i for _, i in rows]})


def test_empty_log_gives_empty_labels_and_all_unlabeled(tmp_path):
    labels = latest_labels(tmp_path)
    assert labels.schema == LABELS_SCHEMA and labels.num_rows == 0
    join = join_labels(_predictions([("a", 0), ("a", 1)]), labels, task="binary",
                       classes=[0, 1])
    assert (join.labeled, join.unlabeled, join.duplicates_dropped) == (0, 2, 0)
    assert join.y_true.to_pylist() == [None, None]
    assert join.mask.tolist() == [False, False]


def test_late_partial_and_twice_labels(tmp_path):
    # Labels arrive in three segments, days after the predictions, for part of the rows;
    # row ("a", 1) is labelled twice and the later label wins, even when its segment is older.
    _feedback(tmp_path, [_label("a", 1, 1, minutes=60 * 48)])
    _feedback(tmp_path, [_label("a", 0, 0, minutes=60 * 24), _label("a", 1, 0, minutes=60)])
    _feedback(tmp_path, [_label("b", 0, 1, minutes=60 * 72)])
    labels = latest_labels(tmp_path)
    assert labels.num_rows == 3
    got = {(r, i): (lab, s) for r, i, lab, s in zip(*(labels.column(c).to_pylist() for c in
                                                       ("request_id", "row", "label",
                                                        "superseded")), strict=True)}
    assert got == {("a", 0): ("0", 0), ("a", 1): ("1", 1), ("b", 0): ("1", 0)}
    predictions = _predictions([("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0)])
    join = join_labels(predictions, labels, task="binary", classes=[0, 1])
    assert join.y_true.to_pylist() == [0, 1, None, 1, None]
    assert join.y_index.to_pylist() == [0, 1, None, 1, None]
    assert (join.labeled, join.unlabeled, join.duplicates_dropped, join.invalid_labels) == \
        (3, 2, 1, 0)
    assert join.label_ts.to_pylist()[1] == T0 + dt.timedelta(hours=48)


def test_same_time_twice_goes_to_the_later_record():
    fb = pa.table({"request_id": ["a", "a", "a"], "row": [0, 0, 0],
                   "ts": pa.array([T0, T0, T0 - dt.timedelta(seconds=1)],
                                  pa.timestamp("us", tz="UTC")),
                   "label": ["0", "1", "0"]})
    out = dedupe_labels(fb)
    assert out.column("label").to_pylist() == ["1"]
    assert out.column("superseded").to_pylist() == [2]


def test_row_null_label_applies_to_every_row_and_a_row_label_beats_it(tmp_path):
    # The per-row label is older than the request-level one and still wins for its row.
    _feedback(tmp_path, [_label("r", 2, "no", minutes=0)])
    _feedback(tmp_path, [_label("r", None, "yes", minutes=10), _label("s", None, "no")])
    labels = latest_labels(tmp_path)
    predictions = _predictions([("r", 0), ("r", 1), ("r", 2), ("s", 0), ("t", 0)])
    join = join_labels(predictions, labels, task="binary", classes=["no", "yes"])
    assert join.y_true.to_pylist() == ["yes", "yes", "no", "no", None]
    assert (join.labeled, join.unlabeled) == (4, 1)


def test_unknown_request_ids_are_counted(tmp_path):
    _feedback(tmp_path, [_label("a", 0, 1), _label("ghost", 0, 1), _label("ghost", None, 0),
                         _label("other", 3, 1)])
    labels = latest_labels(tmp_path)
    assert unknown_labels(labels, ["a", "b"]) == 3
    assert unknown_labels(labels, pa.array(["a", "ghost", "other"])) == 0
    assert unknown_labels(labels, pa.chunked_array([["a"], ["ghost"]])) == 1
    join = join_labels(_predictions([("a", 0), ("b", 0)]), labels, task="binary",
                       classes=[0, 1])
    assert (join.labeled, join.unlabeled) == (1, 1)


def test_invalid_classification_labels_are_counted_not_used(tmp_path):
    # 2 is not a class; "1" (text) and 1.0 match the class 1; null is no label.
    _feedback(tmp_path, [_label("a", 0, 2), _label("a", 1, "1"), _label("a", 2, 1.0),
                         _label("a", 3, None), _label("a", 4, "x")])
    join = join_labels(_predictions([("a", i) for i in range(6)]), latest_labels(tmp_path),
                       task="binary", classes=[0, 1])
    assert join.y_true.to_pylist() == [None, 1, 1, None, None, None]
    assert join.y_true.type == pa.int64()
    assert (join.labeled, join.unlabeled, join.invalid_labels) == (2, 4, 3)


def test_regression_labels_must_be_finite_numbers(tmp_path):
    _feedback(tmp_path, [_label("a", 0, 3.25), _label("a", 1, 7), _label("a", 2, "3.5"),
                         _label("a", 3, True), _label("a", 4, None)])
    join = join_labels(_predictions([("a", i) for i in range(5)]), latest_labels(tmp_path),
                       task="regression")
    assert join.y_true.type == pa.float64()
    assert join.y_true.to_pylist() == [3.25, 7.0, None, None, None]
    assert (join.labeled, join.invalid_labels) == (2, 3)


@pytest.mark.parametrize(("classes", "texts", "expected"), [
    ([True, False], ["true", "false", '"True"', "1"], [True, False, True, None]),
    (["no", "yes"], ['"yes"', '"no"', "1", "null"], ["yes", "no", None, None]),
    ([0, 1, 2], ["2", "2.0", '"0"', "2.5"], [2, 2, 0, None]),
])
def test_decode_labels_to_the_model_type(classes, texts, expected):
    values, index, invalid = decode_labels(pa.array(texts), task="multiclass", classes=classes)
    assert values.to_pylist() == expected
    assert invalid.tolist() == [e is None for e in expected]
    assert index.to_pylist() == [None if e is None else classes.index(e) for e in expected]


def test_decode_numbers_fast_and_slow_paths_agree():
    texts = pa.array([str(x) for x in np.linspace(-5, 5, 101)] + ["1e3"])
    values, _, invalid = decode_labels(texts, task="regression")
    assert not invalid.any()
    np.testing.assert_allclose(values.to_numpy(), [float(t) for t in texts.to_pylist()])
    values, _, invalid = decode_labels(pa.array(["1", "nan", "Infinity", '"2"', "2"]),
                                       task="regression")
    assert values.to_pylist() == [1.0, None, None, None, 2.0]
    assert invalid.tolist() == [False, True, True, True, False]


def test_join_keeps_prediction_order_at_scale():
    rng = np.random.default_rng(0)
    n = 20_000
    ids = np.array([f"r{i // 4}" for i in range(n)])
    rows = np.arange(n) % 4
    perm = rng.permutation(n)
    predictions = pa.table({"request_id": ids[perm], "row": rows[perm]})
    truth = rng.integers(0, 2, n)
    labelled = rng.random(n) < 0.6
    fb = pa.table({"request_id": ids[labelled], "row": rows[labelled],
                   "ts": pa.array(np.full(labelled.sum(), 0), pa.timestamp("us", tz="UTC")),
                   "label": truth[labelled].astype(str)})
    join = join_labels(predictions, fb, task="binary", classes=[0, 1])
    expected = np.where(labelled, truth, -1)[perm]
    got = np.array([-1 if v is None else v for v in join.y_true.to_pylist()])
    np.testing.assert_array_equal(got, expected)
    assert join.labeled == labelled.sum()


def test_decode_labels_with_missing_texts():
    values, index, invalid = decode_labels(pa.array(["1", None, "0"]), task="binary",
                                           classes=[0, 1])
    assert values.to_pylist() == [1, None, 0] and invalid.tolist() == [False, True, False]
    values, index, invalid = decode_labels(pa.array(['"x"', None]))
    assert values.to_pylist() == ["x", None] and index is None
    assert invalid.tolist() == [False, True]
