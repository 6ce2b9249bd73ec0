"""The mergeable sketch of a window's rows, counted on its reference's bins.

A :class:`WindowSketch` counts a window's rows on the bins and categories of a
:class:`~loopml.monitor.reference.Reference`, so a drift test needs only the two count vectors;
sketches of pieces of a window merge into the sketch of the whole, which is how windows are
built incrementally. Columns holding personal data are counted, never looked at.

The reference lives in :mod:`loopml.monitor.reference` and the bins in
:mod:`loopml.monitor.binning`; their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.monitor.binning import (
    COLUMNS_PER_READ,
    _finite,
    bin_slots,
    category_values,
    iter_parquet,
    numeric_values,
    representatives,
)
from loopml.monitor.reference import EDGE_SAMPLE, SKETCH_VERSION, FeatureRef, Reference

if TYPE_CHECKING:
    import pyarrow as pa

# The reference's and the binning's names are re-exported: code imported them from here.
__all__ = ["COLUMNS_PER_READ", "EDGE_SAMPLE", "UNSEEN_TOP", "FeatureRef", "FeatureSketch",
           "Reference", "WindowSketch", "bin_slots", "category_values", "iter_parquet",
           "numeric_values", "representatives"]

UNSEEN_TOP = 20  # unseen categories kept per feature, with their counts


@dataclass
class FeatureSketch:
    """Counts of one feature over a window, on the reference's bins or categories."""

    kind: str
    count: int = 0  # rows seen, missing included
    missing: int = 0  # null, NaN or infinite (invalid values not included)
    invalid: int = 0  # values not readable as the column's type (treated as missing)
    counts: list[float] | None = None  # on the reference bins / categories + other
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    sumsq: float = 0.0
    out_of_range: int = 0  # numbers outside the contract's [low, high]
    unseen: int = 0  # categories outside the contract's allowed values
    unseen_top: list[list[Any]] = field(default_factory=list)  # [[value, count], …]

    @property
    def values(self) -> int:
        """Return how many non-missing values were seen."""
        return self.count - self.missing - self.invalid

    def merge(self, other: FeatureSketch) -> FeatureSketch:
        """Return the sketch of both windows' rows."""
        if self.kind != other.kind or (self.counts is None) != (other.counts is None) \
                or (self.counts is not None and len(self.counts) != len(other.counts or [])):
            raise InvalidInput("sketches of different references cannot be merged: build both "
                               "from the same Reference")
        counts = None if self.counts is None else \
            [a + b for a, b in zip(self.counts, other.counts or [], strict=True)]
        return FeatureSketch(
            kind=self.kind, count=self.count + other.count, missing=self.missing + other.missing,
            invalid=self.invalid + other.invalid, counts=counts,
            min=_pick(min, self.min, other.min), max=_pick(max, self.max, other.max),
            sum=self.sum + other.sum, sumsq=self.sumsq + other.sumsq,
            out_of_range=self.out_of_range + other.out_of_range,
            unseen=self.unseen + other.unseen,
            unseen_top=_merge_top(self.unseen_top, other.unseen_top))

    def to_json(self) -> dict[str, Any]:
        """Return the sketch as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSketch:
        """Return the sketch written by :meth:`to_json`."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class WindowSketch:
    """The mergeable, JSON-ready summary of one window's rows for one model version."""

    def __init__(self, features: dict[str, FeatureSketch], *, rows: int = 0,
                 prediction: FeatureSketch | None = None) -> None:
        self.features = features
        self.rows = rows
        self.prediction = prediction

    def __repr__(self) -> str:
        return f"WindowSketch(rows={self.rows}, features={len(self.features)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowSketch) and self.to_json() == other.to_json()

    @classmethod
    def empty(cls, reference: Reference) -> WindowSketch:
        """Return a sketch with no rows, shaped by ``reference``."""
        features = {name: _empty(ref) for name, ref in reference.features.items()}
        prediction = None if reference.prediction is None else _empty(reference.prediction)
        return cls(features, rows=0, prediction=prediction)

    def update(self, features: pa.Table, *, reference: Reference,
               invalid: Mapping[str, Any] | None = None,
               prediction: pa.Array | pa.ChunkedArray | None = None) -> None:
        """Add a batch of rows: one typed column per reference feature (absent: all missing).

        Numbers are float64 (datetimes as epoch seconds; timestamps are converted), categories
        text (booleans become ``"true"``/``"false"``, numbers their text). ``invalid`` counts, per
        column, the values that could not be read as the column's type (an int or a boolean
        mask); they are null in ``features`` and counted apart from the missing ones.
        ``prediction`` is the model's output for the same rows.
        """
        rows = features.num_rows
        if prediction is not None and len(prediction) != rows:
            raise InvalidInput(f"prediction has {len(prediction)} values for {rows} rows")
        invalid = invalid or {}
        for name, ref in reference.features.items():
            sketch = self.features.get(name)
            if sketch is None:
                raise InvalidInput(f"feature {name!r} is not in this sketch: build the sketch "
                                   "with WindowSketch.empty(reference)")
            column = features.column(name) if name in features.column_names else None
            _update(sketch, ref, column, rows, _invalid_count(invalid.get(name)))
        if self.prediction is not None and reference.prediction is not None \
                and prediction is not None:
            _update(self.prediction, reference.prediction, prediction, rows, 0)
        self.rows += rows

    def merge(self, other: WindowSketch) -> WindowSketch:
        """Return the sketch of both windows' rows (same reference)."""
        if self.features.keys() != other.features.keys():
            raise InvalidInput("sketches over different features cannot be merged: build both "
                               "from the same Reference")
        prediction = None
        if self.prediction is not None and other.prediction is not None:
            prediction = self.prediction.merge(other.prediction)
        else:
            prediction = self.prediction or other.prediction
        return WindowSketch({name: sketch.merge(other.features[name])
                             for name, sketch in self.features.items()},
                            rows=self.rows + other.rows, prediction=prediction)

    def to_json(self) -> dict[str, Any]:
        """Return the sketch as a JSON-ready dict."""
        return {"version": SKETCH_VERSION, "rows": self.rows,
                "features": {name: s.to_json() for name, s in self.features.items()},
                "prediction": None if self.prediction is None else self.prediction.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowSketch:
        """Return the sketch written by :meth:`to_json`."""
        prediction = data.get("prediction")
        return cls({name: FeatureSketch.from_json(s) for name, s in data["features"].items()},
                   rows=int(data["rows"]),
                   prediction=None if prediction is None else FeatureSketch.from_json(prediction))


def _empty(ref: FeatureRef) -> FeatureSketch:
    counts = None
    if ref.has_reference:
        size = len(ref.edges or []) + 1 if ref.kind == "numeric" else len(ref.category_counts or [])
        counts = [0.0] * size
    return FeatureSketch(kind=ref.kind, counts=counts)


def _update(sketch: FeatureSketch, ref: FeatureRef, column: Any, rows: int, invalid: int) -> None:
    """Add one column's values to ``sketch`` (vectorised: no Python loop over rows)."""
    import numpy as np

    sketch.count += rows
    if column is None:
        sketch.missing += rows
        return
    if ref.pii is not None:  # counted, never looked at
        sketch.missing += column.null_count
        sketch.invalid += invalid
        sketch.missing -= min(invalid, column.null_count)
        return
    if ref.kind == "numeric":
        finite = _finite(numeric_values(column))
        missing = rows - finite.size
        sketch.invalid += invalid
        sketch.missing += missing - min(invalid, missing)
        if finite.size == 0:
            return
        if sketch.counts is not None:
            slots = bin_slots(ref.edges or [], finite, counts=ref.counts)
            sketch.counts = (np.asarray(sketch.counts)
                             + np.bincount(slots, minlength=len(sketch.counts))).tolist()
        sketch.min = _pick(min, sketch.min, float(finite.min()))
        sketch.max = _pick(max, sketch.max, float(finite.max()))
        sketch.sum += float(finite.sum())
        sketch.sumsq += float(np.dot(finite, finite))
        if ref.low is not None and sketch.min < ref.low:  # min/max: most batches skip this
            sketch.out_of_range += int(np.count_nonzero(finite < ref.low))
        if ref.high is not None and sketch.max > ref.high:
            sketch.out_of_range += int(np.count_nonzero(finite > ref.high))
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = category_values(column)
    missing = texts.null_count
    sketch.invalid += invalid
    sketch.missing += missing - min(invalid, missing)
    if missing == rows:
        return
    counted = pc.value_counts(texts.drop_null()).flatten()
    values, counts = counted[0], np.asarray(counted[1], dtype=np.float64)
    if sketch.counts is not None:
        index = pc.index_in(values, value_set=pa.array(ref.categories or [], pa.string()))
        slot = index.fill_null(len(sketch.counts) - 1).to_numpy(zero_copy_only=False)
        sketch.counts = (np.asarray(sketch.counts)
                         + np.bincount(slot, weights=counts, minlength=len(sketch.counts))).tolist()
    if ref.allowed is not None:
        unseen = ~np.asarray(pc.is_in(values, value_set=pa.array(ref.allowed, pa.string()))
                             .to_numpy(zero_copy_only=False), dtype=bool)
        if unseen.any():
            sketch.unseen += int(counts[unseen].sum())
            which = np.flatnonzero(unseen)
            top = which[np.argsort(-counts[which], kind="stable")[:UNSEEN_TOP]]
            fresh = [[values[int(i)].as_py(), int(counts[i])] for i in top]
            sketch.unseen_top = _merge_top(sketch.unseen_top, fresh)


def _invalid_count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int | float):
        return int(value)
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(value, pa.Array | pa.ChunkedArray):
        total = pc.sum(pc.cast(value, pa.int64())).as_py() if pa.types.is_boolean(value.type) \
            else len(value)
        return int(total or 0)
    import numpy as np

    array = np.asarray(value)
    return int(array.sum()) if array.dtype == bool else int(array.size)


def _merge_top(a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
    merged: dict[Any, int] = {}
    for value, n in [*a, *b]:
        merged[value] = merged.get(value, 0) + int(n)
    ranked = sorted(merged.items(), key=lambda item: (-item[1], str(item[0])))
    return [[value, n] for value, n in ranked[:UNSEEN_TOP]]


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)
