"""The prediction log's format, sinks and readers, shared by the server and the monitor.

The server writes the log (:class:`loopml.serve.predlog.PredictionLog`); the monitor reads it
back. Both meet here, below them, so the monitor never imports the server.

- :mod:`~loopml.predlog.format` — segment schemas and names, records turned into rows.
- :mod:`~loopml.predlog.sinks` — where segments go: a local folder or any fsspec filesystem.
- :mod:`~loopml.predlog.read` — segments listed and read in time order, torn files skipped.
"""

from __future__ import annotations

from loopml.predlog.format import FEEDBACK_SCHEMA, KINDS, PREDICTION_SCHEMA, TornSegment, to_json
from loopml.predlog.read import (
    Segment,
    iter_segments,
    list_segments,
    read_log,
    read_segment,
    segments_after,
)

__all__ = [
    "FEEDBACK_SCHEMA",
    "KINDS",
    "PREDICTION_SCHEMA",
    "Segment",
    "TornSegment",
    "iter_segments",
    "list_segments",
    "read_log",
    "read_segment",
    "segments_after",
    "to_json",
]
