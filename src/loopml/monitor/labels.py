"""Ground-truth labels from the feedback log: the latest per row, joined to the predictions.

Labels arrive through ``POST /v1/models/{name}/feedback`` as feedback segments (see
:mod:`loopml.predlog`): ``request_id``, ``row`` (null: every row of that request),
``ts`` and ``label`` (JSON text). They may come late, for part of a request, twice (the later
one wins), for request ids no prediction has, or with a value the model cannot have; each
case is counted, never silently mixed into a metric.

>>> labels = latest_labels("/tmp/log")                                 # doctest: +SKIP
>>> join = join_labels(predictions, labels, task="binary", classes=[0, 1])  # doctest: +SKIP
>>> join.labeled, join.unlabeled, join.duplicates_dropped              # doctest: +SKIP
(800, 434, 12)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

    from loopml.predlog.read import Skipped

#: The table :func:`latest_labels` gives: the feedback schema plus ``superseded``, the number
#: of earlier labels for the same (request_id, row) that the kept one replaced.
LABELS_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=True),
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("superseded", pa.int64(), nullable=False),
])


def latest_labels(folder: str | os.PathLike[str], *, skipped: Skipped | None = None,
                  since: Any = None) -> pa.Table:
    """Return the last label by ``ts`` per (request_id, row) of every feedback segment.

    Columns are those of :data:`LABELS_SCHEMA`. A row-null label applies to every row of its
    request (see :func:`join_labels`). Unreadable segments are appended to ``skipped``.
    ``since`` (a datetime or epoch seconds) leaves out labels that arrived before it.
    """
    from loopml.predlog import iter_segments

    tables = [table for _, table in iter_segments(folder, kind="feedback", skipped=skipped,
                                                  since=since)]
    if not tables:
        return LABELS_SCHEMA.empty_table()
    return dedupe_labels(pa.concat_tables(tables))


def dedupe_labels(feedback: pa.Table) -> pa.Table:
    """Return ``feedback`` (FEEDBACK_SCHEMA rows) keeping the last label per (request_id, row).

    Ties on ``ts`` go to the record that comes later in the table (segment order).

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> fb = pa.table({"request_id": ["a", "a"], "row": [0, 0], "ts": [t, t],
    ...                "label": ["0", "1"]})
    >>> out = dedupe_labels(fb)
    >>> out.column("label").to_pylist(), out.column("superseded").to_pylist()
    (['1'], [1])
    """
    import numpy as np
    import pyarrow.compute as pc

    n = feedback.num_rows
    if n == 0:
        return LABELS_SCHEMA.empty_table()
    # The rank of each record by (ts, position): the highest rank of a key is its latest label.
    order = pc.sort_indices(pa.table({"ts": feedback.column("ts"),
                                      "pos": np.arange(n, dtype=np.int64)}),
                            sort_keys=[("ts", "ascending"), ("pos", "ascending")])
    rank = np.empty(n, dtype=np.int64)
    rank[order.to_numpy()] = np.arange(n, dtype=np.int64)
    keyed = pa.table({"request_id": feedback.column("request_id"),
                      "row": feedback.column("row").cast(pa.int64()), "rank": rank})
    groups = keyed.group_by(["request_id", "row"], use_threads=False).aggregate(
        [("rank", "max"), ("rank", "count")])
    latest = order.to_numpy()[groups.column("rank_max").to_numpy()]
    latest.sort()  # keep segment order in the result
    superseded = np.empty(n, dtype=np.int64)
    superseded[order.to_numpy()[groups.column("rank_max").to_numpy()]] = \
        groups.column("rank_count").to_numpy() - 1
    return pa.table({
        "request_id": feedback.column("request_id").take(latest),
        "row": feedback.column("row").cast(pa.int64()).take(latest),
        "ts": feedback.column("ts").cast(LABELS_SCHEMA.field("ts").type).take(latest),
        "label": feedback.column("label").take(latest),
        "superseded": pa.array(superseded[latest]),
    }, schema=LABELS_SCHEMA)


@dataclass(frozen=True)
class LabelJoin:
    """Labels aligned with a table of predictions.

    - ``y_true``: one entry per prediction row, the label decoded to the model's label type
      (ints, text, true/false, or float for regression); null where the row has no usable
      label.
    - ``y_index``: for classifiers with known classes, the label's index in the classes
      (int64, null where ``y_true`` is null); None otherwise.
    - ``label_ts``: when the label used arrived (null where none).
    - ``labeled``: rows with a usable label; ``unlabeled``: rows without one (no label yet,
      or an invalid one).
    - ``duplicates_dropped``: earlier labels replaced by a later one for the labels used.
    - ``invalid_labels``: rows whose label is not one of the model's classes (or, for
      regression, not a finite number); counted in ``unlabeled``.
    """

    y_true: pa.Array
    y_index: pa.Array | None
    label_ts: pa.Array
    labeled: int
    unlabeled: int
    duplicates_dropped: int
    invalid_labels: int

    @property
    def mask(self) -> np.ndarray:
        """Return a boolean numpy array: True where the row has a usable label."""
        import numpy as np

        return np.asarray(self.y_true.is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    def counts(self) -> dict[str, int]:
        """Return the counts as a JSON-ready dict."""
        return {"labeled": self.labeled, "unlabeled": self.unlabeled,
                "duplicates_dropped": self.duplicates_dropped,
                "invalid_labels": self.invalid_labels}


def join_labels(predictions: pa.Table, labels: pa.Table, *, task: str | None = None,
                classes: Sequence[Any] | None = None) -> LabelJoin:
    """Return the labels of ``predictions`` (rows with ``request_id`` and ``row``) as a LabelJoin.

    ``labels`` is :func:`latest_labels`' table (or raw feedback rows, deduplicated here).
    A per-row label beats a request-level (row-null) one for that row, whatever their times.
    ``task`` and ``classes`` (the signature's ``outputs.task`` and ``outputs.labels``) decode
    the JSON labels to the model's type; without them the labels are decoded as JSON as is.
    """
    import numpy as np
    import pyarrow.compute as pc

    for name in ("request_id", "row"):
        if name not in predictions.column_names:
            raise InvalidInput(f"join_labels: the predictions have no column {name!r}; pass "
                               "rows of the prediction log")
    if "superseded" not in labels.column_names:
        labels = dedupe_labels(labels)
    n = predictions.num_rows
    chosen = np.full(n, -1, dtype=np.int64)
    if labels.num_rows and n:
        left = pa.table({"request_id": predictions.column("request_id"),
                         "row": predictions.column("row").cast(pa.int64()),
                         "_pos": np.arange(n, dtype=np.int64)})
        index = pa.table({"request_id": labels.column("request_id"),
                          "row": labels.column("row").cast(pa.int64()),
                          "_label": np.arange(labels.num_rows, dtype=np.int64)})
        is_request = pc.is_null(index.column("row")).to_numpy(zero_copy_only=False)
        # Request-level labels first, then per-row labels over them: the per-row one wins.
        whole = index.filter(pa.array(is_request)).drop_columns(["row"])
        if whole.num_rows:
            hit = left.join(whole, "request_id", join_type="inner", use_threads=False)
            chosen[hit.column("_pos").to_numpy()] = hit.column("_label").to_numpy()
        per_row = index.filter(pa.array(~is_request))
        if per_row.num_rows:
            hit = left.join(per_row, ["request_id", "row"], join_type="inner", use_threads=False)
            chosen[hit.column("_pos").to_numpy()] = hit.column("_label").to_numpy()
    found = chosen >= 0
    take = pa.array(np.where(found, chosen, 0), mask=~found)
    values, y_index, invalid = decode_labels(labels.column("label"), task=task, classes=classes)
    y_true = values.take(take) if len(values) else pa.nulls(n, values.type)
    row_invalid = np.zeros(n, dtype=bool)
    row_invalid[found] = invalid[chosen[found]]
    used = np.unique(chosen[found])
    superseded = labels.column("superseded").to_numpy() if labels.num_rows else np.zeros(0)
    labeled = int(found.sum() - row_invalid.sum())
    return LabelJoin(
        y_true=y_true,
        y_index=None if y_index is None else (y_index.take(take) if len(y_index)
                                              else pa.nulls(n, pa.int64())),
        label_ts=(labels.column("ts").take(take) if labels.num_rows
                  else pa.nulls(n, LABELS_SCHEMA.field("ts").type)),
        labeled=labeled, unlabeled=n - labeled,
        duplicates_dropped=int(superseded[used].sum()) if len(used) else 0,
        invalid_labels=int(row_invalid.sum()))


def unknown_labels(labels: pa.Table, known_request_ids: pa.Array | Iterable[str]) -> int:
    """Return how many labels are for request ids that no prediction has.

    >>> unknown_labels(pa.table({"request_id": ["a", "zz"]}), ["a", "b"])
    1
    """
    import pyarrow.compute as pc

    if labels.num_rows == 0:
        return 0
    known = known_request_ids if isinstance(known_request_ids, (pa.Array, pa.ChunkedArray)) \
        else pa.array(list(known_request_ids), pa.string())
    if isinstance(known, pa.ChunkedArray):
        known = known.combine_chunks()
    hit = pc.is_in(labels.column("request_id"), value_set=known.cast(pa.string()))
    return int(labels.num_rows - pc.sum(hit).as_py()) if labels.num_rows else 0


# ---------------------------------------------------------------------------------- decoding


def _class_key(value: Any) -> str | None:
    """Return the text a label or class is matched by (None: not a usable label).

    ``1``, ``1.0`` and ``"1"`` match the class ``1``; ``true`` and ``"True"`` match ``True``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value.lower() if value.lower() in ("true", "false") else value
    return None


def decode_labels(texts: pa.Array | pa.ChunkedArray, *, task: str | None = None,
                  classes: Sequence[Any] | None = None
                  ) -> tuple[pa.Array, pa.Array | None, np.ndarray]:
    """Return ``(values, class indices or None, invalid mask)`` of JSON label texts.

    Classifiers (``classes`` given): values of the classes' type, null where the label is
    not one of them (marked invalid). Regression: float64, invalid unless a finite number.
    Otherwise: each text decoded as JSON as is (invalid: not JSON, or null).

    >>> values, index, bad = decode_labels(pa.array(['"yes"', '"maybe"']), task="binary",
    ...                                    classes=["no", "yes"])
    >>> values.to_pylist(), index.to_pylist(), bad.tolist()
    (['yes', None], [1, None], [False, True])
    """
    import numpy as np
    import pyarrow.compute as pc

    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    texts = texts.cast(pa.string())
    if task == "regression":
        return _regression(texts)
    # Few distinct labels in practice: decode each distinct text once.
    encoded = pc.dictionary_encode(texts)
    distinct = encoded.dictionary.to_pylist()
    # A null text (no label) gets the code after the last distinct text.
    codes = np.asarray(encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False),
                       dtype=np.int64)
    decoded = [_json(text) for text in distinct]
    if classes is None:
        ok = np.array([v is not None for v in decoded] + [False], dtype=bool)
        values = pa.array([(decoded + [None])[c] for c in codes]) if len(codes) else \
            pa.array([])
        invalid = ~ok[codes] if len(codes) else np.zeros(0, dtype=bool)
        return values, None, invalid
    lookup: dict[str, int] = {}
    for index, value in enumerate(classes):
        key = _class_key(value)
        if key is not None:
            lookup.setdefault(key, index)
    mapped = np.array([lookup.get(_class_key(v), -1) if v is not None else -1
                       for v in decoded] + [-1], dtype=np.int64)
    index = mapped[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    invalid = index < 0
    y_index = pa.array(np.where(invalid, 0, index), mask=invalid)
    class_values = _class_array(classes)
    values = class_values.take(y_index) if len(class_values) else pa.nulls(len(index))
    return values, y_index, invalid


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _class_array(classes: Sequence[Any]) -> pa.Array:
    """Return the classes as one Arrow array (text when their types are mixed)."""
    values = [c.item() if hasattr(c, "item") else c for c in classes]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([str(v) for v in values], pa.string())


def _regression(texts: pa.Array) -> tuple[pa.Array, None, np.ndarray]:
    values, invalid = _decode_numbers(texts)
    return values, None, invalid


def _decode_numbers(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Return float64 values of JSON number texts and the mask of those that are not."""
    import numpy as np
    import pyarrow.compute as pc

    try:
        numbers = pc.cast(texts, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = pa.array([_number(t) for t in texts.to_pylist()], pa.float64())
    else:
        # Arrow reads "nan", "inf" and " 1" as numbers; a JSON number is never any of them.
        finite = pc.is_finite(numbers)
        numbers = pc.if_else(finite, numbers, pa.scalar(None, pa.float64()))
    invalid = numbers.is_null().to_numpy(zero_copy_only=False)
    invalid = np.asarray(invalid, dtype=bool) | np.asarray(
        texts.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if invalid.any():
        numbers = pc.if_else(pa.array(~invalid), numbers, pa.scalar(None, pa.float64()))
    return numbers, invalid


def _number(text: str | None) -> float | None:
    value = None if text is None else _json(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
