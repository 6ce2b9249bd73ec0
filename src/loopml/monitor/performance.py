"""Model performance over the prediction log: realised once labels arrive, estimated before.

Labels (:mod:`loopml.monitor.labels`) are re-exported here: ``latest_labels``,
``join_labels``, ``unknown_labels``, ``LabelJoin``.
"""

from __future__ import annotations

from loopml.monitor.labels import LabelJoin, join_labels, latest_labels, unknown_labels

__all__ = ["LabelJoin", "join_labels", "latest_labels", "unknown_labels"]
