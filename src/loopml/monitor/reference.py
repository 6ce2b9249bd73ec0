"""The reference a window is compared with: what the training data looked like, per feature.

A :class:`Reference` says, per feature, what the training data looked like: numbers as counts
over bin edges (the dataset profile's equal-mass reference bins, or its 20 equal-width bins for
a version 1 profile), categories as counts of the top values plus one "other", and the
contract's range and categories. It is built from a stored dataset profile, from a frame, or
from a Parquet file read twice in batches. Bins are closed on the right (see
:mod:`loopml.monitor.binning`); datetimes are numbers (epoch seconds). Columns holding personal
data are not monitored and no value of theirs is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.monitor.binning import (
    _finite,
    bin_slots,
    category_values,
    iter_parquet,
    numeric_values,
    representatives,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["EDGE_SAMPLE", "SKETCH_VERSION", "FeatureRef", "Reference"]

EDGE_SAMPLE = 65_536  # values per number whose quantiles are a streamed reference's edges
SKETCH_VERSION = 1
_KINDS = {"number": "numeric", "numeric": "numeric", "integer": "numeric",
          "datetime": "numeric", "category": "categorical", "categorical": "categorical",
          "string": "categorical", "boolean": "categorical"}


@dataclass(frozen=True)
class FeatureRef:
    """What a reference knows about one column (JSON-ready)."""

    name: str
    kind: str  # numeric | categorical (datetimes: numeric, epoch seconds)
    rows: int  # reference rows, missing included
    missing_share: float
    edges: list[float] | None = None  # numeric: ascending, bins closed on the right
    counts: list[float] | None = None  # numeric: [below, bin0 … bin_{k-1}, above]
    mean: float | None = None
    std: float | None = None
    categories: list[str] | None = None  # categorical: known values as text
    category_counts: list[float] | None = None  # same order, then "other"
    low: float | None = None  # contract range (numbers)
    high: float | None = None
    allowed: list[str] | None = None  # contract categories (None: unknown)
    pii: str | None = None  # personal-data kind: not monitored, no value ever shown
    datetime: bool = False  # numbers that are epoch seconds

    @property
    def has_reference(self) -> bool:
        """Return whether there is a distribution to compare with (not PII, counts known)."""
        if self.pii is not None:
            return False
        if self.kind == "numeric":
            return bool(self.edges) and bool(self.counts) and sum(self.counts) > 0
        return bool(self.categories) and bool(self.category_counts) \
            and sum(self.category_counts) > 0

    def to_json(self) -> dict[str, Any]:
        """Return the feature as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureRef:
        """Return the feature written by :meth:`to_json`."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Reference:
    """The distribution of every monitored feature (and of the model's output) at training."""

    features: dict[str, FeatureRef]
    prediction: FeatureRef | None
    rows: int
    source: str

    def to_json(self) -> dict[str, Any]:
        """Return the reference as a JSON-ready dict."""
        return {"version": SKETCH_VERSION, "source": self.source, "rows": self.rows,
                "features": [f.to_json() for f in self.features.values()],
                "prediction": None if self.prediction is None else self.prediction.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reference:
        """Return the reference written by :meth:`to_json`."""
        features = [FeatureRef.from_json(f) for f in data["features"]]
        prediction = data.get("prediction")
        return cls(features={f.name: f for f in features},
                   prediction=None if prediction is None else FeatureRef.from_json(prediction),
                   rows=int(data["rows"]), source=str(data["source"]))

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any], *, signature: Mapping[str, Any] | None = None,
                     source: str) -> Reference:
        """Return the reference of a stored dataset profile, for the signature's inputs.

        Numbers and datetimes take the profile's reference bins (version 2) or its 20-bin
        histogram (version 1); categories take its top values plus "other" (the rest of the
        count). The contract range (``low``/``high``) and categories (``allowed``) come from the
        signature; without ``allowed``, the reference's categories when the profile listed every
        value. Without a signature every profiled column is a feature.
        """
        columns = profile.get("columns") or {}
        rows = int(profile.get("num_rows") or 0)
        if signature is not None:
            specs = [dict(entry) for entry in signature.get("inputs", [])]
        else:
            specs = [{"name": name, "kind": stats.get("kind")} for name, stats in columns.items()
                     if stats.get("kind") in ("numeric", "categorical", "datetime")]
        features = {}
        for spec in specs:
            name = str(spec["name"])
            features[name] = _feature_from_profile(name, spec, columns.get(name), rows)
        return cls(features=features, prediction=None, rows=rows, source=source)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | pa.Table, *, columns: Iterable[str] | None = None,
                   bins: int | None = None, pii: Mapping[str, str] | None = None,
                   source: str = "frame") -> Reference:
        """Return the reference of a frame: quantile bins and top categories from its values.

        Edges are the frame's quantiles (numpy, ``bins`` equal-mass bins as the profile makes),
        counts exact. ``pii`` maps personal-data columns to their kind; None detects them from
        the first rows. Columns of other types (lists, binary) are left out.
        """
        table = _as_table(frame, columns)
        if pii is None:
            pii = _detect_pii(table)
        builder = _Builder(table.schema, pii=pii, bins=bins, sample=None)
        builder.first_pass(table)
        builder.second_pass(table)
        return builder.reference(source)

    @classmethod
    def from_parquet(cls, path: str | Path, *, columns: Iterable[str] | None = None,
                     bins: int | None = None, pii: Mapping[str, str] | None = None,
                     source: str | None = None, batch_rows: int = 131_072) -> Reference:
        """Return the reference of a Parquet file, read twice in record batches.

        Memory stays bounded by a batch: the first pass keeps moments, category counts and a
        sample of ``EDGE_SAMPLE`` values per number (the bins' edges are its quantiles, exact
        when the file has no more rows), the second counts every value on those bins.
        """
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{str(path)!r} is not a file: give the path of a Parquet file")
        file = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering kept row groups: +300 MB
        schema = file.schema_arrow
        names = list(columns) if columns is not None else schema.names
        unknown = [c for c in names if c not in schema.names]
        if unknown:
            raise InvalidInput(f"columns {unknown} are not in {path.name}; it has "
                               f"{schema.names[:20]}")
        if pii is None:
            pii = _detect_pii(_head(path, names))
        import pyarrow as pa

        builder = _Builder(pa.schema([schema.field(n) for n in names]), pii=pii, bins=bins,
                           sample=EDGE_SAMPLE, total_rows=file.metadata.num_rows)
        builder.rows = file.metadata.num_rows
        for batch in iter_parquet(file, names, batch_rows=batch_rows):
            builder.first_pass(batch, count_rows=False)
        for batch in iter_parquet(file, builder.binned(), batch_rows=batch_rows):
            builder.second_pass(batch)
        return builder.reference(source or f"file {path.name}")


class _Builder:
    """Builds a reference over batches: moments and categories, then counts on the edges."""

    def __init__(self, schema: pa.Schema, *, pii: Mapping[str, str], bins: int | None,
                 sample: int | None, total_rows: int = 0) -> None:
        import numpy as np

        from loopml.data.profile import REFERENCE_BINS

        self.bins = REFERENCE_BINS if bins is None else int(bins)
        if self.bins < 1:
            raise InvalidInput(f"bins must be at least 1, got {bins}")
        self.kinds = {f.name: _arrow_kind(f.type) for f in schema}
        self.kinds = {name: kind for name, kind in self.kinds.items() if kind is not None}
        self.datetime = {f.name: _is_datetime(f.type) for f in schema}
        self.pii = {name: str(kind) for name, kind in pii.items() if name in self.kinds}
        self.sample = sample  # None: every value (exact quantiles)
        # each row is kept with the same probability: twice the sample over the whole file,
        # cut to the sample's size when the edges are drawn
        self.keep = 1.0 if sample is None else min(1.0, 2.0 * sample / max(total_rows, 1))
        self.rng = np.random.default_rng(0)  # the same file always gives the same edges
        self.rows = 0
        self.nulls = dict.fromkeys(self.kinds, 0)
        self.moments: dict[str, list[float]] = {}  # n, mean, M2, min, max (Chan's merge)
        self.values: dict[str, list[Any]] = {}
        self.categories: dict[str, list[pa.Table]] = {}
        self.edges: dict[str, Any] = {}
        self.counts: dict[str, Any] = {}

    def binned(self) -> list[str]:
        """Return the columns the second pass counts."""
        self._edges()
        return list(self.edges)

    def first_pass(self, table: pa.Table, *, count_rows: bool = True) -> None:
        """Add a batch (of some or all columns) to the moments, samples and categories."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = table.num_rows
        if count_rows:
            self.rows += rows
        keep = None
        if self.keep < 1.0 and rows:
            keep = self.rng.random(rows) < self.keep
        for name in table.column_names:
            kind = self.kinds.get(name)
            if kind is None:
                continue
            column = table.column(name)
            if name in self.pii:
                self.nulls[name] += column.null_count
                continue
            if kind == "numeric":
                values = numeric_values(column)
                finite = np.isfinite(values)
                self.nulls[name] += rows - int(finite.sum())
                kept = values[finite]
                if kept.size == 0:
                    continue
                self._moments(name, kept)
                chosen = values[finite & keep] if keep is not None else kept
                self.values.setdefault(name, []).append(chosen)
            else:
                texts = category_values(column)
                self.nulls[name] += texts.null_count
                if texts.null_count < rows:
                    counted = pc.value_counts(texts.drop_null()).flatten()
                    self.categories.setdefault(name, []).append(
                        pa.table({"v": counted[0], "n": counted[1]}))

    def _moments(self, name: str, values: Any) -> None:
        n, mean = float(values.size), float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        low, high = float(values.min()), float(values.max())
        if name not in self.moments:
            self.moments[name] = [n, mean, m2, low, high]
            return
        n0, mean0, m20, low0, high0 = self.moments[name]
        total = n0 + n
        delta = mean - mean0
        self.moments[name] = [total, mean0 + delta * n / total,
                              m20 + m2 + delta * delta * n0 * n / total,
                              min(low0, low), max(high0, high)]

    def _edges(self) -> None:
        import numpy as np

        from loopml.data.profile import reference_edges, reference_probabilities

        if self.edges or not self.values:
            return
        for name, parts in self.values.items():
            values = np.concatenate(parts)
            if self.sample is not None and values.size > self.sample:
                values = self.rng.choice(values, self.sample, replace=False)
            _, _, _, low, high = self.moments[name]
            inner = np.quantile(values, reference_probabilities(self.bins)).tolist() \
                if values.size else []
            self.edges[name] = np.asarray(reference_edges(low, high, inner))
            self.counts[name] = np.zeros(self.edges[name].size + 1)
        self.values.clear()

    def second_pass(self, table: pa.Table) -> None:
        import numpy as np

        self._edges()
        for name in table.column_names:
            edges = self.edges.get(name)
            if edges is None:
                continue
            values = _finite(numeric_values(table.column(name)))
            self.counts[name] += np.bincount(bin_slots(edges.tolist(), values),
                                             minlength=edges.size + 1)

    def reference(self, source: str) -> Reference:
        import pyarrow as pa

        from loopml.data.profile import TOP

        self._edges()
        rows, features = self.rows, {}
        for name, kind in self.kinds.items():
            base = {"name": name, "kind": kind, "rows": rows,
                    "missing_share": _share(self.nulls[name], rows)}
            if name in self.pii:
                features[name] = FeatureRef(**base, pii=self.pii[name])
            elif kind == "numeric":
                if name not in self.edges:
                    features[name] = FeatureRef(**base, datetime=self.datetime[name])
                    continue
                n, mean, m2, _, _ = self.moments[name]
                features[name] = FeatureRef(
                    **base, edges=self.edges[name].tolist(),
                    counts=self.counts[name].astype(float).tolist(), mean=mean,
                    std=(m2 / (n - 1)) ** 0.5 if n > 1 else None, datetime=self.datetime[name])
            else:
                parts = self.categories.get(name)
                if not parts:
                    features[name] = FeatureRef(**base)
                    continue
                grouped = pa.concat_tables(parts).group_by("v").aggregate([("n", "sum")])
                values = grouped.column("v").to_pylist()
                counts = grouped.column("n_sum").to_pylist()
                total = sum(counts)
                if len(values) > max(TOP, total // 2):  # ids, e-mails: as the profile does
                    features[name] = FeatureRef(**base)
                    continue
                order = sorted(range(len(values)), key=lambda i: (-counts[i], values[i]))
                top = order[:TOP]
                categories = [values[i] for i in top]
                other = float(total - sum(counts[i] for i in top))
                features[name] = FeatureRef(
                    **base, categories=categories,
                    category_counts=[float(counts[i]) for i in top] + [other],
                    allowed=list(categories) if other == 0 else None)
        return Reference(features=features, prediction=None, rows=rows, source=source)


def _feature_from_profile(name: str, spec: Mapping[str, Any], stats: Mapping[str, Any] | None,
                          rows: int) -> FeatureRef:
    """Return one feature's reference from its profile entry and its signature entry."""
    import numpy as np

    declared = spec.get("kind")
    # What the data is (the profile's kind) decides how it is binned; the signature's kind says
    # how the model encodes it (a date may be "category", a boolean "number" there).
    kind = _KINDS.get(str(stats.get("kind"))) if stats is not None else None
    if kind is None:
        kind = _KINDS.get(str(declared))
    if kind is None and spec.get("type") == "datetime":
        kind = "numeric"
    kind = kind or "numeric"
    allowed = spec.get("allowed")
    allowed = [_text(v) for v in allowed] if allowed is not None else None
    low, high = _number(spec.get("min")), _number(spec.get("max"))
    if stats is None:
        return FeatureRef(name=name, kind=kind, rows=rows, missing_share=0.0, low=low,
                          high=high, allowed=allowed)
    base = {"name": name, "kind": kind, "rows": rows,
            "missing_share": float(stats.get("missing_share") or 0.0)}
    if stats.get("pii"):
        return FeatureRef(**base, pii=str(stats["pii"]))
    base.update(low=low, high=high)
    if kind == "numeric":
        datetime = stats.get("kind") == "datetime" or declared == "datetime" \
            or spec.get("type") == "datetime"
        reference = stats.get("reference")
        if reference and reference.get("edges"):  # version 2: equal-mass bins, right-closed
            edges = [float(e) for e in reference["edges"]]
            counts = [0.0, *map(float, reference["counts"]), 0.0]
            mean, std = _number(reference.get("mean")), _number(reference.get("std"))
        elif stats.get("histogram"):
            edges, counts = _from_histogram(stats["histogram"])
            mean, std = None, None
        else:
            return FeatureRef(**base, allowed=allowed, datetime=datetime)
        if stats.get("kind") == "numeric":
            mean, std = _number(stats.get("mean")), _number(stats.get("std"))
        if mean is None or std is None:  # datetimes of version 1: moments of the bins
            mids = representatives(edges, None, None)
            weights = np.asarray(counts)
            mean = float(np.average(mids, weights=weights))
            std = float(np.sqrt(np.average((mids - mean) ** 2, weights=weights)))
        return FeatureRef(**base, edges=edges, counts=counts, mean=mean, std=std,
                          allowed=allowed, datetime=datetime)
    top = stats.get("top") or []
    if not top:  # text that differs in almost every row (ids), or a numeric column
        return FeatureRef(**base, allowed=allowed)
    categories = [_text(v) for v, _ in top]
    counts = [float(n) for _, n in top]
    count = float(stats.get("count") or sum(counts))
    other = max(count - sum(counts), 0.0)
    if allowed is None and other == 0:  # the profile listed every value
        allowed = list(categories)
    return FeatureRef(**base, categories=categories, category_counts=[*counts, other],
                      allowed=allowed)


def _from_histogram(histogram: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """Return right-closed edges and outer-padded counts of a version 1 histogram.

    Version 1 bins are ``[e_i, e_{i+1})`` with the last one closed; for doubles, ``x >= e``
    is ``x > nextafter(e, -inf)``, so moving every edge but the last one ulp down gives the
    same bins closed on the right.
    """
    import numpy as np

    edges = np.asarray(histogram["edges"], dtype=np.float64)
    shifted = np.nextafter(edges[:-1], -np.inf).tolist() + [float(edges[-1])]
    return shifted, [0.0, *map(float, histogram["counts"]), 0.0]


def _as_table(frame: Any, columns: Iterable[str] | None) -> pa.Table:
    import pyarrow as pa

    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    if not isinstance(frame, pa.Table):
        try:
            frame = pa.Table.from_pandas(frame, preserve_index=False)
        except (TypeError, pa.ArrowException) as error:
            raise InvalidInput(f"a pandas DataFrame or an Arrow table was expected: "
                               f"{error}") from error
    if columns is not None:
        columns = list(columns)
        missing = [c for c in columns if c not in frame.column_names]
        if missing:
            raise InvalidInput(f"columns {missing} are not in the frame; it has "
                               f"{frame.column_names[:20]}")
        frame = frame.select(columns)
    return frame


def _head(path: Path, names: list[str]) -> pa.Table:
    """Return the first rows of a Parquet file, read by DuckDB.

    Arrow would decode the first row group of every column (300 MB for 1M rows x 25), DuckDB
    reads a few pages.
    """
    from loopml.data.pii import SAMPLE
    from loopml.data.profile import connect, quote

    con = connect()
    try:
        literal = "'" + str(path).replace("'", "''") + "'"
        select = ", ".join(quote(n) for n in names)
        query = f"SELECT {select} FROM read_parquet({literal}) LIMIT {SAMPLE}"
        return con.sql(query).to_arrow_table()
    finally:
        con.close()


def _detect_pii(table: pa.Table) -> dict[str, str]:
    from loopml.data.pii import SAMPLE, detect

    if table.num_rows == 0:
        return {}
    batches = table.slice(0, SAMPLE).to_batches()
    import pyarrow as pa

    batch = pa.Table.from_batches(batches).combine_chunks().to_batches()[0] if batches else None
    return {} if batch is None else {f.column: f.kind for f in detect(batch)}


def _arrow_kind(arrow_type: pa.DataType) -> str | None:
    import pyarrow as pa

    from loopml.data.profile import column_kind

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    kind = column_kind(arrow_type)
    return {"numeric": "numeric", "datetime": "numeric", "categorical": "categorical"}.get(kind)


def _is_datetime(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)


def _share(part: float, whole: float) -> float:
    return float(part) / whole if whole else 0.0


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
