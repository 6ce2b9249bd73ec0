"""The monitoring tables: the cursor moves by compare-and-set, alerts are raised once."""

from __future__ import annotations

import pytest

from loopml.errors import ConflictError
from loopml.store.monitoring import CursorRecord, WindowRecord


def _window(start: int, rows: int) -> WindowRecord:
    return WindowRecord(model="credit", version=1, window="1d", start_key=start, rows=rows,
                        sketch={"rows": rows}, segments=[f"seg-{start}"])


def test_cursor_moves_once_and_a_stale_pass_writes_nothing(store) -> None:
    monitoring = store.monitoring
    start = monitoring.cursor("credit|1d")
    assert (start.predictions, start.passes) == (None, 0)
    moved = CursorRecord("credit|1d", predictions="0001.parquet", state={"1": 10})
    monitoring.save_sketches(start, moved, [_window(0, 10)])
    now = monitoring.cursor("credit|1d")
    assert (now.predictions, now.passes, now.state) == ("0001.parquet", 1, {"1": 10})

    # a second pass that started from the same (now stale) position is refused whole
    with pytest.raises(ConflictError, match="another pass"):
        monitoring.save_sketches(start, CursorRecord("credit|1d", predictions="0002.parquet"),
                                 [_window(0, 999), _window(1, 5)])
    stored = monitoring.windows("credit", "1d")
    assert [(w.start_key, w.rows, w.dirty) for w in stored] == [(0, 10, True)]

    monitoring.save_sketches(now, CursorRecord("credit|1d", predictions="0002.parquet"),
                             [_window(0, 15), _window(1, 5)])
    assert [(w.start_key, w.rows) for w in monitoring.windows("credit", "1d")] == [(0, 15),
                                                                                    (1, 5)]
    assert [w.start_key for w in monitoring.windows("credit", "1d", keys=[(1, 1)])] == [1]


def test_results_clear_dirty_and_alerts_are_raised_once(store) -> None:
    monitoring = store.monitoring
    monitoring.save_sketches(monitoring.cursor("m|1d"), CursorRecord("m|1d", predictions="a"),
                             [_window(0, 10)])
    alert = {"version": 1, "start_key": 0, "kind": "drift", "severity": "warning",
             "message": "3 of 8 features drifted", "details": {"share": 0.375}}
    first = monitoring.save_results("credit", "1d", [((1, 0), {"drift": {}})], [alert])
    again = monitoring.save_results("credit", "1d", [((1, 0), {"drift": {}})],
                                    [{**alert, "message": "changed"}])
    assert [a.message for a in first] == ["3 of 8 features drifted"] and again == []
    assert [w.dirty for w in monitoring.windows("credit", "1d")] == [False]
    listed = monitoring.alerts(model="credit")
    assert [(a.kind, a.details) for a in listed] == [("drift", {"share": 0.375})]
    monitoring.set_webhook(listed[0].id, "sent (HTTP 200)")
    assert monitoring.alerts(kinds=["drift"])[0].webhook == "sent (HTTP 200)"
    assert monitoring.alerts(kinds=["performance"]) == []
    monitoring.mark_dirty("credit", "1d", [(1, 0)])
    assert len(monitoring.windows("credit", "1d", dirty_only=True)) == 1


def test_references_are_kept_once(store) -> None:
    monitoring = store.monitoring
    assert monitoring.reference("credit", 1) is None
    assert monitoring.save_reference("credit", 1, {"rows": 5}) == {"rows": 5}
    assert monitoring.save_reference("credit", 1, {"rows": 6}) == {"rows": 5}
    assert monitoring.reset("credit", "1d", cursor="credit|1d") == 0
