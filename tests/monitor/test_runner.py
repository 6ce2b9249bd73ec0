"""The monitor over a real prediction log: windows, cursor, alerts, late labels, webhook, CLI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from monitor_helpers import DAY1, DAY2, log_period, publish

from loopml.config import ProjectConfig
from loopml.monitor.runner import Monitor
from loopml.registry.registry import Registry
from loopml.workspace import Workspace

SETTINGS = ProjectConfig.model_validate({"monitor": {
    "performance": {"max_drop": 0.08, "min_labeled_rows": 100}}}).monitor


def _registry(home: Path) -> Registry:
    return Registry.open(Workspace.from_env(home, env={}))


def _monitor(home: Path, log: Path, **options) -> tuple[Monitor, Registry]:
    registry = _registry(home)
    return Monitor(registry, "credit", settings=options.pop("settings", SETTINGS), log_dir=log,
                   settle_seconds=0, **options), registry


def test_shift_raises_drift_and_performance_alerts_only_where_it_happened(home, tmp_path):
    log = tmp_path / "log"
    log_period(home, log, when=DAY1, seed=11)
    log_period(home, log, when=DAY2, seed=12, shift=1.5, concept=1.0)
    monitor, registry = _monitor(home, log, window="1d")
    with registry:
        result = monitor.run_pass()
        report = monitor.report()
    assert result.rows == 2000 and result.segments == 6
    by_day = {w["start"][:10]: w for w in report["windows"]}
    assert set(by_day) == {DAY1.date().isoformat(), DAY2.date().isoformat()}
    calm, shifted = by_day[DAY1.date().isoformat()], by_day[DAY2.date().isoformat()]
    assert calm["rows"] == shifted["rows"] == 1000
    assert not calm["drift"]["dataset_drift"] and shifted["drift"]["dataset_drift"]
    assert {"age", "debt"} <= set(shifted["drift"]["drifted"])
    assert calm["performance"]["labeled_rows"] == 1000
    realised = shifted["performance"]["realised"]["roc_auc"]
    assert realised < calm["performance"]["realised"]["roc_auc"]
    assert shifted["performance"]["drop_low"] >= 0.08 > calm["performance"]["drop_low"]
    kinds = {(a.start_key, a.kind) for a in result.new_alerts}
    day2 = int(DAY2.replace(hour=0).timestamp() * 1000)
    assert {(day2, "drift"), (day2, "performance")} <= kinds
    assert all(start == day2 for start, _ in kinds)  # nothing on the calm day


def test_passes_read_only_new_segments_and_a_killed_pass_counts_nothing_twice(
        home, tmp_path, monkeypatch):
    import loopml.monitor.runner as runner

    log = tmp_path / "log"
    log_period(home, log, when=DAY1, seed=21, labels=False)
    monitor, registry = _monitor(home, log, window="1d")
    with registry:
        assert monitor.run_pass().rows == 1000
        again = monitor.run_pass()
        assert (again.rows, again.segments) == (0, 0)
        log_period(home, log, when=DAY1 + timedelta(hours=2), seed=22, rows=600, labels=False)

        # a pass that dies after its first checkpoint: what it stored stays counted once
        monkeypatch.setattr(runner, "FLUSH_ROWS", 1)
        real = Monitor._read_segment
        calls = {"n": 0}

        def dying(self, segment, *args):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return real(self, segment, *args)

        monkeypatch.setattr(Monitor, "_read_segment", dying)
        with pytest.raises(KeyboardInterrupt):
            monitor.run_pass()
        monkeypatch.setattr(Monitor, "_read_segment", real)
        resumed = monitor.run_pass()
        windows = registry.client.store.monitoring.windows("credit", "1d")
    assert resumed.rows == 200  # the 400-row segment was stored before the kill
    assert [w.rows for w in windows] == [1600]


def test_labels_arriving_late_turn_the_estimate_into_the_realised_figure(home, tmp_path):
    log = tmp_path / "log"
    feedback = log_period(home, log, when=DAY2, seed=31, shift=1.5, concept=1.0,
                           labels=False)
    monitor, registry = _monitor(home, log, window="1d")
    with registry:
        first = monitor.run_pass()
        before = monitor.report()["windows"][0]["performance"]
        assert before["realised"] is None and before["labeled_rows"] == 0
        assert before["estimated"]["roc_auc"] > 0.5  # the model's own confidence, no labels
        assert "performance" not in {a.kind for a in first.new_alerts}
        publish(log, "feedback", feedback[:300])  # part of them, then some twice
        publish(log, "feedback", feedback[:50] + [dict(f, request_id="nobody")
                                                  for f in feedback[:5]])
        second = monitor.run_pass()
        after = monitor.report()["windows"][0]["performance"]
    assert after["labeled_rows"] == 300 and after["duplicates_dropped"] == 50
    assert after["realised"]["roc_auc"] < after["reference"] - 0.08
    assert "performance" in {a.kind for a in second.new_alerts}


def test_labels_later_than_the_horizon_leave_old_windows_alone(home, tmp_path):
    log = tmp_path / "log"
    feedback = log_period(home, log, when=DAY1, seed=33, labels=False)
    settings = SETTINGS.model_copy(update={"performance": SETTINGS.performance.model_copy(
        update={"label_horizon": "1d"})})
    monitor, registry = _monitor(home, log, window="1d", settings=settings)
    with registry:
        monitor.run_pass()
        publish(log, "feedback", feedback)  # three days after the window: past the horizon
        late = monitor.run_pass()
        performance = monitor.report()["windows"][0]["performance"]
    assert late.feedback_segments == 1 and performance["labeled_rows"] == 0


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_new_alerts_are_posted_to_the_webhook_once(home, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    settings = SETTINGS.model_copy(update={"webhook": url})
    log = tmp_path / "log"
    log_period(home, log, when=DAY2, seed=41, shift=1.5, concept=1.0)
    try:
        monitor, registry = _monitor(home, log, window="1d", settings=settings)
        with registry:
            new = monitor.run_pass().new_alerts
            monitor.run_pass()  # nothing new: nothing posted again
            stored = registry.client.store.monitoring.alerts(model="credit")
    finally:
        server.shutdown()
    assert new and len(_Hook.received) == len(new)
    assert {m["alert"]["kind"] for m in _Hook.received} == {a.kind for a in new}
    assert {a.webhook for a in stored if a.id in {n.id for n in new}} == {"sent (HTTP 204)"}


def test_a_webhook_that_is_down_is_recorded_not_fatal(home, tmp_path):
    settings = SETTINGS.model_copy(update={"webhook": "http://127.0.0.1:9/down"})
    log = tmp_path / "log"
    log_period(home, log, when=DAY2, seed=51, shift=1.5, concept=1.0, labels=False)
    monitor, registry = _monitor(home, log, window="1d", settings=settings)
    with registry:
        new = monitor.run_pass().new_alerts
    assert new and all(a.webhook is None for a in new)  # the records as raised
    with _registry(home) as registry:
        stored = registry.client.store.monitoring.alerts(model="credit")
    assert all(a.webhook.startswith("failed") for a in stored if a.id in {n.id for n in new})
