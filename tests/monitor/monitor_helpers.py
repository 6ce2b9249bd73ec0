"""Prediction logs for monitoring tests: a model's real outputs on generated rows, published."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from loopml.demo_data import make_credit
from loopml.predlog.format import KINDS, ROW_MAKERS
from loopml.predlog.sinks import sink_for
from loopml.registry.registry import Registry
from loopml.workspace import Workspace

# Days before today (labels are only joined to windows within the label horizon, 30 days)
DAY1 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=3)
DAY2 = DAY1 + timedelta(days=1)


def publish(folder: Path | str, kind: str, records: list[dict[str, Any]]) -> str:
    """Publish ``records`` as one segment of ``kind`` (as the server's writer does); its name."""
    rows = [ROW_MAKERS[kind](record, 0) for record in records]
    schema = KINDS[kind]
    table = pa.table({field.name: [row[i] for row in rows] for i, field in enumerate(schema)},
                     schema=schema)
    sink = sink_for(folder, kind)
    sink.open()
    return sink.publish(table)


def traffic(model: Any, frame: Any, *, name: str, version: int, when: datetime,
            columns: list[str], target: str = "default", request_rows: int = 10
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (prediction records, feedback records) of ``model`` answering ``frame``'s rows."""
    import json

    labels = model.predict(frame[columns]).tolist()
    proba = model.predict_proba(frame[columns]).tolist() if hasattr(model, "predict_proba") \
        else [None] * len(frame)
    inputs = json.loads(frame[columns].to_json(orient="records", date_format="iso"))
    truth = frame[target].tolist()
    predictions, feedback = [], []
    for start in range(0, len(frame), request_rows):
        request_id = uuid.uuid4().hex
        for row in range(min(request_rows, len(frame) - start)):
            i = start + row
            predictions.append({"request_id": request_id, "row": row, "ts": when,
                                "model": name, "version": version, "flavour": "native",
                                "latency_ms": 1.0, "prediction": labels[i],
                                "probabilities": proba[i], "inputs": inputs[i]})
            feedback.append({"request_id": request_id, "row": row, "ts": when,
                             "label": truth[i]})
    return predictions, feedback


def credit_home(root: Path) -> Path:
    """Return the home of a workspace with ``credit@1`` (champion), a small logistic model."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from server_helpers import credit_workspace

    return credit_workspace(root, versions=1, rows=2000)


def log_period(home: Path, log: Path, *, when: datetime, seed: int, shift: float = 0.0,
                concept: float = 0.0, rows: int = 1000, labels: bool = True) -> list[dict]:
    """Log ``credit@1``'s answers to generated rows (in 400-row segments); the feedback."""
    with Registry.open(Workspace.from_env(home, env={})) as registry:
        record = registry.get("credit@1")
        model = registry.load(record)
        columns = [c["name"] for c in record.signature["inputs"]]
    frame = make_credit(rows, seed=seed, shift=shift, concept=concept)
    predictions, feedback = traffic(model, frame, name="credit", version=1, when=when,
                                    columns=columns)
    for start in range(0, len(predictions), 400):  # a few segments, as a server writes them
        publish(log, "predictions", predictions[start:start + 400])
    if labels:
        publish(log, "feedback", feedback)
    return feedback
