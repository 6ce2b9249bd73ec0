"""One monitoring pass over the prediction log: new segments into windows, verdicts, alerts.

A monitor is a model name and a window size (``credit`` and ``1d``). Each pass:

1. reads only the prediction segments published since its cursor, one at a time, turns each
   row's logged inputs into typed columns and adds them to the mergeable sketch of the
   window (and model version) they fall in — the cost grows with new data only, memory
   with the number of windows touched;
2. stores the touched windows with the moved cursor in one transaction every
   ``FLUSH_ROWS`` rows (a compare-and-set: a segment is never counted twice, even when a
   monitor is killed mid-pass or two run at once);
3. recomputes the verdict of every window whose sketch or labels changed: drift per
   feature, data quality, performance (realised from the labels that arrived, estimated
   from the model's calibrated confidence before), and raises each crossed rule as an
   alert once (POSTed to the webhook, if one is set).

Each version is compared with its own reference, made once and stored: the profile of the
dataset version it was trained on (the training data is never read again) and its outputs
on its test split (for prediction drift and the confidence-based estimate).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, LoopmlError, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.monitor.reference import Reference
    from loopml.monitor.settings import MonitorSection
    from loopml.monitor.sketch import WindowSketch
    from loopml.registry.registry import Registry
    from loopml.store.models import ModelVersionRecord
    from loopml.store.monitoring import AlertRecord, CursorRecord, WindowRecord

FLUSH_ROWS = 1_000_000  # rows between stored checkpoints of a pass
WEBHOOK_BATCH = 100  # alerts a pass POSTs at most
_CHEAP_COLUMNS = ["request_id", "row", "ts", "model", "version", "prediction", "probabilities"]

# (segments done, segments in all, rows so far): a progress bar's callback
Progress = Callable[[int, int, int], None]


@dataclass
class PassResult:
    """What one pass read and found."""

    model: str
    window: str
    segments: int = 0
    rows: int = 0
    feedback_segments: int = 0
    windows_updated: int = 0
    new_alerts: list[AlertRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def cursor_name(model: str, window: str) -> str:
    """Return the store key of the monitor of ``model`` in windows of ``window``.

    >>> cursor_name("credit", "1d")
    'credit|1d'
    """
    return f"{model}|{window}"


class Monitor:
    """Monitoring of one model name, in windows of one size, over one prediction log."""

    def __init__(self, registry: Registry, model: str, *, settings: MonitorSection,
                 log_dir: str | Path, window: str | None = None,
                 settle_seconds: float = 5.0) -> None:
        from loopml.monitor.settings import parse_window

        self.registry = registry
        self.model = model
        self.settings = settings
        self.log_dir = str(log_dir)
        self.window = (window or settings.window).strip()
        try:
            self.window_kind, self.window_size = parse_window(self.window)
        except ValueError as exc:
            raise InvalidInput(f"--window: {exc}") from None
        self.settle_seconds = settle_seconds
        self._references: dict[int, Reference] = {}
        self._extras: dict[int, dict[str, Any]] = {}
        self._records: dict[int, ModelVersionRecord] = {}
        self._parsers: dict[int, Any] = {}
        self._unmonitored: dict[int, str] = {}  # version -> why it has no reference
        self._open: dict[tuple[int, int], WindowSketch] = {}  # sketches of a pass's windows

    @property
    def monitoring(self) -> Any:
        return self.registry.client.store.monitoring

    # -- references ------------------------------------------------------------------------

    def record(self, version: int) -> ModelVersionRecord:
        """Return the registry record of ``version`` of the monitored model."""
        if version not in self._records:
            self._records[version] = self.registry.get(f"{self.model}@{version}")
        return self._records[version]

    def reference(self, version: int) -> Reference:
        """Return the reference of ``version``, made once and stored (see the module doc)."""
        from loopml.monitor.reference import FeatureRef, Reference

        if version in self._references:
            return self._references[version]
        stored = self.monitoring.reference(self.model, version)
        if stored is None:
            stored = self.monitoring.save_reference(self.model, version,
                                                    self._make_reference(version))
        reference = Reference.from_json(stored["features"])
        if reference.prediction is None and stored.get("model", {}).get("prediction"):
            from dataclasses import replace

            reference = replace(reference, prediction=FeatureRef(**stored["model"]["prediction"]))
        self._references[version] = reference
        self._extras[version] = stored.get("model") or {}
        return reference

    def model_extras(self, version: int) -> dict[str, Any]:
        """Return what the reference knows of the model: calibrator, test metrics, threshold."""
        self.reference(version)
        return self._extras[version]

    def _make_reference(self, version: int) -> dict[str, Any]:
        from loopml.monitor.performance import model_reference
        from loopml.monitor.reference import Reference

        record = self.record(version)
        dataset = record.lineage.get("dataset")
        if not dataset:
            raise InvalidInput(f"{record.ref} has no training dataset in its lineage (an "
                               "imported model?): there is no reference to monitor it against")
        catalog = self.registry.catalog
        project = record.lineage.get("project")
        try:
            data_version = catalog.get(dataset, project=project) if project else \
                catalog.get(dataset)
        except NotFound as exc:
            raise NotFound(f"{record.ref} was trained on {dataset}, which is not in this "
                           f"workspace: {exc}") from None
        features = Reference.from_profile(catalog.profile(data_version),
                                          signature=record.signature,
                                          source=f"profile of {data_version.ref}")
        try:
            model = model_reference(self.registry, record)
        except (LoopmlError, AttributeError, ValueError, TypeError) as exc:
            # the split is gone, the artifact fails its check, no predict_proba …: drift and
            # quality still work; performance has no estimate and compares with the card
            model = {"error": str(exc)[:500], "test_metrics": dict(record.metrics or {})}
        return {"features": features.to_json(), "model": model}

    # -- one pass --------------------------------------------------------------------------

    def run_pass(self, *, progress: Progress | None = None) -> PassResult:
        """Read what is new in the log, update the windows, recompute verdicts and alerts."""
        from loopml.predlog import list_segments

        name = cursor_name(self.model, self.window)
        result = PassResult(self.model, self.window)
        cursor = self.monitoring.cursor(name)
        segments = list_segments(self.log_dir, after=cursor.predictions,
                                 settle_seconds=self.settle_seconds, skipped=result.skipped)
        feedback = list_segments(self.log_dir, kind="feedback", after=cursor.feedback,
                                 settle_seconds=self.settle_seconds, skipped=result.skipped)
        result.feedback_segments = len(feedback)
        touched: dict[tuple[int, int], WindowRecord] = {}
        state = dict(cursor.state)
        pending_rows = 0
        last_name = cursor.predictions
        for done, segment in enumerate(segments, start=1):
            rows = self._read_segment(segment, touched, state, result)
            result.segments += 1
            result.rows += rows
            pending_rows += rows
            last_name = segment.name
            if pending_rows >= FLUSH_ROWS:
                cursor = self._flush(cursor, last_name, cursor.feedback, state, touched)
                result.windows_updated += len(touched)
                touched, pending_rows = {}, 0
            if progress is not None:
                progress(done, len(segments), result.rows)
        new_feedback = feedback[-1].name if feedback else cursor.feedback
        if feedback:  # labels arrived: recent windows' realised performance may have moved.
            # Marked before the cursor passes the feedback: a pass killed in between marks
            # them again next time, never loses them.
            self.monitoring.mark_dirty(self.model, self.window, self.monitoring.keys_since(
                self.model, self.window, self._label_cutoff(feedback[0].epoch_ms)))
        if touched or last_name != cursor.predictions or new_feedback != cursor.feedback:
            cursor = self._flush(cursor, last_name, new_feedback, state, touched)
            result.windows_updated += len(touched)
        result.new_alerts = self._recompute(result)
        return result

    def _label_cutoff(self, oldest_ms: int) -> datetime:
        """Return the oldest window end that labels published at ``oldest_ms`` may update.

        Re-reading a window's outputs costs a read of its segments; bounding how late a
        label may come (``monitor.performance.label_horizon``) keeps a pass's cost with the
        recent log, not the whole of it.
        """
        from loopml.monitor.settings import parse_window

        horizon_s = parse_window(self.settings.performance.label_horizon)[1]
        return datetime.fromtimestamp(oldest_ms / 1000 - horizon_s, UTC)

    def _read_segment(self, segment: Any, touched: dict[tuple[int, int], WindowRecord],
                      state: dict[str, Any], result: PassResult) -> int:
        """Add one segment's rows of the monitored model to the windows they fall in."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from loopml.monitor.logscan import InputParser, prediction_values, window_keys
        from loopml.monitor.sketch import WindowSketch
        from loopml.predlog import TornSegment, read_segment
        from loopml.predlog.sinks import split_location

        fs, _ = split_location(self.log_dir)
        try:
            table = read_segment(segment, filesystem=fs)
        except TornSegment as exc:
            result.skipped.append((segment.path, str(exc)))
            return 0
        table = table.filter(pc.equal(table.column("model"), self.model))
        if not table.num_rows:
            return 0
        added = 0
        for version in sorted(set(table.column("version").to_pylist())):
            part = table.filter(pc.equal(table.column("version"), version))
            if version in self._unmonitored:
                continue
            try:
                reference = self.reference(version)
            except (NotFound, InvalidInput) as exc:  # deleted, or imported without its data
                self._unmonitored[version] = str(exc)
                result.skipped.append((segment.path, f"{self.model}@{version} is not "
                                       f"monitored (its rows are passed over): {exc}"))
                continue
            record = self.record(version)
            if version not in self._parsers:  # one per version: it learns the columns' types
                self._parsers[version] = InputParser({
                    name: "datetime" if ref.datetime else ref.kind
                    for name, ref in reference.features.items() if ref.pii is None})
            features, invalid = self._parsers[version].parse(part.column("inputs"))
            outputs = record.signature.get("outputs", {})
            predicted = prediction_values(
                part, task=record.task, labels=list(outputs.get("labels") or []),
                kind=None if reference.prediction is None else reference.prediction.kind)
            if self.window_kind == "time":
                keys = window_keys(part.column("ts"), seconds=self.window_size)
                spans = [(int(k), np.flatnonzero(keys == k)) for k in np.unique(keys)]
            else:
                seen = int(state.get(str(version), 0))
                index = (seen + np.arange(part.num_rows)) // self.window_size
                spans = [(int(k), np.flatnonzero(index == k)) for k in np.unique(index)]
                state[str(version)] = seen + part.num_rows
            ts = part.column("ts")
            for key, rows in spans:
                take = pa.array(rows)
                window = touched.get((version, key))
                if window is None:
                    window = self._load_window(version, key, reference)
                    touched[(version, key)] = window
                sketch = self._open.get((version, key))
                if sketch is None:  # parsed once a pass, written back at the checkpoint
                    sketch = self._open[(version, key)] = WindowSketch.from_json(window.sketch)
                sketch.update(features.take(take), reference=reference,
                              invalid={k: int(pc.sum(v.take(take)).as_py() or 0)
                                       for k, v in invalid.items()},
                              prediction=predicted.take(take))
                window.rows += len(rows)
                first, last = pc.min_max(ts.take(take)).values()
                window.first_ts = _earliest(window.first_ts, first.as_py())
                window.last_ts = _latest(window.last_ts, last.as_py())
                window.segments.append([segment.name, int(rows[0]), int(rows[-1]) + 1]
                                       if self.window_kind == "rows" else [segment.name])
                added += len(rows)
        return added

    def _load_window(self, version: int, key: int, reference: Reference) -> WindowRecord:
        from loopml.monitor.sketch import WindowSketch
        from loopml.store.monitoring import WindowRecord

        stored = self.monitoring.windows(self.model, self.window, keys=[(version, key)])
        if stored:
            return stored[0]
        return WindowRecord(model=self.model, version=version, window=self.window,
                            start_key=key, rows=0,
                            sketch=WindowSketch.empty(reference).to_json(), segments=[])

    def _flush(self, cursor: CursorRecord, predictions: str | None, feedback: str | None,
               state: dict[str, Any], touched: dict[tuple[int, int], WindowRecord]
               ) -> CursorRecord:
        from loopml.store.monitoring import CursorRecord

        moved = CursorRecord(cursor.name, predictions=predictions, feedback=feedback,
                             state=dict(state))
        for key, window in touched.items():
            window.sketch = self._open[key].to_json()
        self.monitoring.save_sketches(cursor, moved, list(touched.values()))
        self._open = {}
        return CursorRecord(cursor.name, predictions=predictions, feedback=feedback,
                            state=dict(state), passes=cursor.passes + 1,
                            updated_at=datetime.now(UTC))

    # -- verdicts --------------------------------------------------------------------------

    def _recompute(self, result: PassResult) -> list[AlertRecord]:
        """Recompute the verdict of every dirty window; store them and their alerts."""
        from loopml.monitor.alerts import rules_for, send_webhook

        dirty = self.monitoring.windows(self.model, self.window, dirty_only=True)
        if not dirty:
            return []
        labels = None
        if any(self._has_outputs(w.version) for w in dirty):
            from loopml.monitor.labels import latest_labels

            # labels come after their predictions: older feedback cannot touch these windows
            oldest = min((w.first_ts for w in dirty if w.first_ts is not None), default=None)
            labels = latest_labels(self.log_dir, skipped=result.skipped, since=oldest)
        results, alerts = [], []
        for window in dirty:
            verdict = self.window_result(window, labels)
            found = rules_for(verdict, self.settings)
            verdict["alerts"] = found
            results.append((window.key, verdict))
            alerts += [{**a, "version": window.version, "start_key": window.start_key}
                       for a in found]
        new = self.monitoring.save_results(self.model, self.window, results, alerts)
        if self.settings.webhook:
            # this pass's alerts, and any a pass stopped before it could send in the last day
            # (not a history raised before the webhook was set), oldest first
            unsent = self.monitoring.alerts(model=self.model, unsent=True, limit=WEBHOOK_BATCH,
                                            since=datetime.now(UTC) - timedelta(days=1))
            for alert in sorted((a for a in unsent if a.window == self.window),
                                key=lambda a: a.id):
                self.monitoring.set_webhook(alert.id, send_webhook(self.settings.webhook, alert))
        return new

    def _has_outputs(self, version: int) -> bool:
        return bool(self.record(version).signature.get("outputs"))

    def window_result(self, window: WindowRecord, labels: pa.Table | None) -> dict[str, Any]:
        """Return the verdict of one stored window (the "Window result JSON" of the design)."""
        from loopml.monitor.drift import window_drift, window_quality
        from loopml.monitor.sketch import WindowSketch

        reference = self.reference(window.version)
        sketch = WindowSketch.from_json(window.sketch)
        drift = window_drift(reference, sketch, self.settings.drift)
        quality = window_quality(reference, sketch, self.settings.quality)
        return {
            "model": self.model, "version": window.version, "window": self.window,
            "start": _window_start(self, window), "end": _window_end(self, window),
            "index": window.start_key if self.window_kind == "rows" else None,
            "first_ts": _iso(window.first_ts), "last_ts": _iso(window.last_ts),
            "rows": window.rows, "drift": drift.to_json(), "quality": quality.to_json(),
            "performance": self._performance(window, labels),
        }

    def _performance(self, window: WindowRecord, labels: pa.Table | None) -> dict[str, Any]:
        """Realised metrics from the labels so far, and the estimate from confidence."""
        from loopml.monitor.calibration import Calibrator, estimate_metrics
        from loopml.monitor.labels import join_labels
        from loopml.monitor.performance import realised_interval, realised_metrics

        record = self.record(window.version)
        extras = self.model_extras(window.version)
        outputs = record.signature.get("outputs", {})
        classes = list(outputs.get("labels") or [])
        metric = self.settings.performance.metric or record.lineage.get("metric") \
            or _default_metric(record.task)
        if not _fits(metric, record.task):  # a project-wide metric another task cannot have
            metric = record.lineage.get("metric") if _fits(record.lineage.get("metric"),
                                                           record.task) \
                else _default_metric(record.task)
        reference_value = (extras.get("test_metrics") or record.metrics or {}).get(metric)
        table = self._window_rows(window)
        out: dict[str, Any] = {"metric": metric, "reference": reference_value,
                               "labeled_rows": 0, "realised": None, "interval": None,
                               "estimated": None, "drop": None, "drop_low": None,
                               "estimated_drop": None}
        if table is None or not table.num_rows:
            return out
        threshold = outputs.get("threshold")
        probabilities = _probabilities(table)
        if labels is not None and labels.num_rows:
            joined = join_labels(table, labels, task=record.task, classes=classes or None)
            out.update(joined.counts())
            out["labeled_rows"] = joined.labeled
            if joined.labeled >= self.settings.performance.min_labeled_rows:
                mask = joined.mask
                args = (record.task, classes, joined.y_true.filter(mask),
                        table.column("prediction").filter(mask),
                        None if probabilities is None else probabilities[mask])
                realised = realised_metrics(*args, threshold=threshold)
                out["realised"] = realised
                out["drop"] = _drop(metric, reference_value, realised.get(metric))
                # How much worse at least, with 95% confidence: a small window's bad luck
                # (or a lucky card) is not an alert; the drop must hold beyond its noise.
                interval = realised_interval(*args, metric=metric, threshold=threshold)
                if interval is not None:
                    out["interval"] = list(interval)
                    better_end = interval[1] if _direction(metric) > 0 else interval[0]
                    out["drop_low"] = _drop(metric, reference_value, better_end)
        calibrator = extras.get("calibrator")
        if probabilities is not None and calibrator and record.task != "regression":
            estimated = estimate_metrics(record.task, classes, probabilities,
                                         Calibrator.from_json(calibrator), threshold=threshold)
            out["estimated"] = estimated
            if estimated:
                out["estimated_drop"] = _drop(metric, reference_value, estimated.get(metric))
        return out

    def _window_rows(self, window: WindowRecord) -> pa.Table | None:
        """Return the cheap columns (ids, outputs) of the window's rows, read again."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from loopml.monitor.logscan import window_keys
        from loopml.predlog import TornSegment
        from loopml.predlog.read import day_of
        from loopml.predlog.sinks import split_location

        fs, base = split_location(self.log_dir)
        parts = []
        for entry in window.segments:
            name = entry[0]
            day = day_of(int(name[:13]))
            path = f"{base.rstrip('/')}/predictions/{day}/{name}"
            try:
                table = _read_columns(path, fs)
            except (TornSegment, OSError):
                continue  # removed or torn since: the window keeps its sketch
            table = table.filter(pc.and_(pc.equal(table.column("model"), self.model),
                                         pc.equal(table.column("version"), window.version)))
            if self.window_kind == "rows":
                table = table.slice(entry[1], entry[2] - entry[1])
            else:
                keys = window_keys(table.column("ts"), seconds=self.window_size)
                table = table.filter(pa.array(np.asarray(keys) == window.start_key))
            parts.append(table)
        return pa.concat_tables(parts) if parts else None

    # -- the report ------------------------------------------------------------------------

    def report(self, *, since: datetime | None = None) -> dict[str, Any]:
        """Return the whole report: every stored window's verdict (since ``since``), alerts."""
        windows = self.monitoring.windows(self.model, self.window)
        results = []
        for window in windows:
            if since is not None and window.last_ts is not None and window.last_ts < since:
                continue
            if window.result is not None:  # the sketch rides along for the distribution plots
                results.append({**window.result, "sketch": window.sketch})
        versions = sorted({w["version"] for w in results})
        alerts = [a for a in self.monitoring.alerts(model=self.model) if a.window == self.window
                  and (since is None or a.created_at >= since)]
        return {
            "model": self.model, "window": self.window, "log_dir": self.log_dir,
            "generated_at": datetime.now(UTC).isoformat(),
            "reference": {str(v): {"source": self.reference(v).source,
                                   "rows": self.reference(v).rows,
                                   "features": self.reference(v).to_json().get("features"),
                                   "prediction": self.reference(v).to_json().get("prediction"),
                                   "test_metrics": self.model_extras(v).get("test_metrics")}
                          for v in versions},
            "rule": _rule_text(self.settings),
            # the webhook URL often carries a secret token: only whether one is set
            "settings": {**self.settings.model_dump(mode="json", exclude={"webhook"}),
                         "webhook": bool(self.settings.webhook)},
            "windows": results,
            "alerts": [_alert_json(a) for a in alerts],
        }


def _read_columns(path: str, fs: Any) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.predlog import TornSegment

    try:
        with (fs.open(path, "rb") if fs is not None else open(path, "rb")) as f:
            return pq.ParquetFile(f).read(columns=_CHEAP_COLUMNS)
    except (pa.ArrowException, ValueError) as exc:
        raise TornSegment(f"{path}: {exc}") from exc


def _probabilities(table: pa.Table) -> Any:
    """Return the probabilities as an (n, k) numpy array, or None for a regressor."""
    import numpy as np

    column = table.column("probabilities")
    if column.null_count == len(column):
        return None
    values = column.combine_chunks()
    if values.null_count:
        return None  # rows of a model that gave no probabilities: no estimate
    width = len(values[0].as_py()) if len(values) else 0
    return np.asarray(values.flatten().to_numpy(zero_copy_only=False),
                      dtype=float).reshape(-1, width)


def _default_metric(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}.get(task,
                                                                                    "accuracy")


def _fits(metric: str | None, task: str) -> bool:
    from loopml.evaluate.metrics import METRICS

    return metric in METRICS and task in METRICS[metric].tasks


def _direction(metric: str) -> int:
    from loopml.evaluate.metrics import METRICS

    return METRICS[metric].direction if metric in METRICS else 1


def _drop(metric: str, reference: float | None, value: float | None) -> float | None:
    """Return how much worse ``value`` is than ``reference`` (positive: worse)."""
    if reference is None or value is None:
        return None
    return float((reference - value) * _direction(metric))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _earliest(current: datetime | None, new: datetime | None) -> datetime | None:
    if new is not None and new.tzinfo is None:
        new = new.replace(tzinfo=UTC)
    return new if current is None or (new is not None and new < current) else current


def _latest(current: datetime | None, new: datetime | None) -> datetime | None:
    if new is not None and new.tzinfo is None:
        new = new.replace(tzinfo=UTC)
    return new if current is None or (new is not None and new > current) else current


def _window_start(monitor: Monitor, window: WindowRecord) -> str | None:
    if monitor.window_kind == "rows":
        return _iso(window.first_ts)
    return datetime.fromtimestamp(window.start_key / 1000, UTC).isoformat()


def _window_end(monitor: Monitor, window: WindowRecord) -> str | None:
    if monitor.window_kind == "rows":
        return _iso(window.last_ts)
    return datetime.fromtimestamp(window.start_key / 1000 + monitor.window_size, UTC).isoformat()


def _rule_text(settings: MonitorSection) -> str:
    d = settings.drift
    return (f"windows and references of at least {d.large_sample_rows:,} rows: effect sizes "
            f"decide (numbers: Wasserstein/std >= {d.wasserstein} or PSI >= {d.psi}; "
            f"categories: Jensen-Shannon distance >= {d.jensen_shannon} or PSI >= {d.psi}); "
            f"smaller: KS (numbers) and chi-squared (categories) at alpha {d.alpha} with "
            f"{d.correction} correction across features; a window drifts when at least "
            f"{d.share:.0%} of its features drift")


def _alert_json(alert: AlertRecord) -> dict[str, Any]:
    return {"id": alert.id, "model": alert.model, "version": alert.version,
            "window": alert.window, "start_key": alert.start_key, "kind": alert.kind,
            "severity": alert.severity, "message": alert.message, "details": alert.details,
            "created_at": alert.created_at.isoformat(), "webhook": alert.webhook}


def dumps(value: Any) -> str:
    """Return strict JSON (NaN and infinities as null) of a report or a result."""
    from loopml.evaluate.card import json_safe

    return json.dumps(json_safe(value), allow_nan=False)
