"""Per-column profiles of a Parquet snapshot, computed by DuckDB out of core.

A profile holds what people read (type, missing share, distinct count, min/max/mean/std,
quantiles, top values) and what monitoring needs later to test drift without re-reading
the data: a histogram with its bin edges for every numeric and datetime column, and value
counts for every categorical one. Since version 2, every numeric and datetime column also
carries ``reference``: ``REFERENCE_BINS`` equal-mass bins (edges from quantiles, duplicates
removed, exact counts per bin, datetimes in epoch seconds) that drift tests compare windows of
served data with; version 1 profiles only have the 20 equal-width bins.

Statistics are exact up to ``EXACT_ROWS`` rows; above that, distinct counts are HyperLogLog
estimates and quantiles come from a reservoir sample (DuckDB's ``reservoir_quantile``, four
times faster than its t-digest here). Counts, min/max, mean, std and histograms stay exact at
any size; the reference bins' edges come from a sample above ``EDGE_SAMPLE`` rows, their
counts are exact.

Wide data is profiled in chunks of columns (``COLUMNS_PER_QUERY``, fewer when exact
quantiles must hold many rows per column), on a connection with a memory limit: one query
over 500 columns needed more than 2 GB. Columns holding personal data (declared or detected)
keep only counts, distinct count and text lengths: no min/max, quantiles, histogram or top
values, since those are raw values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP = 50
EXACT_ROWS = 5_000_000
REFERENCE_BINS = 50
EDGE_SAMPLE = 16_384  # rows whose quantiles are the reference bins' edges above that size
PROFILE_VERSION = 2
COLUMNS_PER_QUERY = 64
QUERY_BYTES = 256 << 20  # what one query's exact quantile and distinct states may hold
MEMORY_LIMIT = "1GB"
LIST_DISTINCT_ROWS = 100_000


def column_kind(arrow_type: pa.DataType) -> str:
    """Return numeric, categorical, datetime or other.

    >>> import pyarrow as pa
    >>> column_kind(pa.float64()), column_kind(pa.string()), column_kind(pa.bool_())
    ('numeric', 'categorical', 'categorical')
    """
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) \
            or pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) \
            or pa.types.is_boolean(arrow_type):
        return "categorical"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "other"


def quote(name: str) -> str:
    """Quote a column name for SQL.

    >>> quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def connect() -> duckdb.DuckDBPyConnection:
    """Return a DuckDB connection with two threads, a memory limit and cached Parquet footers.

    The footer cache matters for wide files: every query would otherwise re-read the
    metadata of thousands of columns.
    """
    from loopml.imports import import_uninterrupted

    duckdb = import_uninterrupted("duckdb")
    con = duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT,
                                 "preserve_insertion_order": False})
    con.execute("SET parquet_metadata_cache = true")
    return con


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Yield ``items`` in lists of at most ``size``.

    >>> list(chunks([1, 2, 3, 4, 5], 2))
    [[1, 2], [3, 4], [5]]
    """
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + max(1, size)]


def columns_per_query(num_rows: int, *, exact: bool) -> int:
    """Return how many columns one scan may profile: fewer when exact states hold every row.

    >>> columns_per_query(10_000, exact=True), columns_per_query(2_000_000, exact=True)
    (64, 4)
    """
    if not exact:
        return COLUMNS_PER_QUERY
    # quantile_cont keeps each value and count(DISTINCT) hashes it: ~30 bytes a value
    # measured (8 columns x 2M rows: +470 MB)
    return max(1, min(COLUMNS_PER_QUERY, QUERY_BYTES // (32 * max(num_rows, 1))))


def profile_parquet(path: Path, schema: pa.Schema, *,
                    pii: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the profile of the Parquet file at ``path`` as a JSON-ready dict.

    A few scans a chunk of columns do the work (counts and moments, then histograms), plus
    one grouped scan per categorical column for its top values; DuckDB runs each scan in
    parallel over the row groups. ``pii`` maps personal-data columns to their kind; when
    it is None, the columns are detected from a sample of the file. Those columns get no
    statistic that is a raw value (min, max, quantiles, histogram, top values).
    """
    if pii is None:
        pii = _detect_pii(path)
    con = connect()
    try:
        literal = "'" + str(path).replace("'", "''") + "'"  # DDL cannot take parameters
        # read_parquet in every query, not a view: DuckDB binds a view of 5,000 columns in
        # ~0.1 s a query, the file itself (footer cached) in ~0.01 s.
        table = f"read_parquet({literal})"
        num_rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        exact = num_rows <= EXACT_ROWS
        fields = list(schema)
        size = columns_per_query(num_rows, exact=exact)
        columns: dict[str, dict[str, Any]] = {}
        for chunk in chunks(fields, size):
            columns.update(_moments(con, table, chunk, num_rows, exact=exact, pii=pii))
        for chunk in chunks(fields, COLUMNS_PER_QUERY):
            _histograms(con, table, chunk, columns)
        for field in fields:
            stats = columns[field.name]
            if stats["kind"] == "categorical" and stats["count"] and "pii" not in stats:
                stats.update(_categorical(con, table, _value(field.name, field.type), field.type,
                                          stats))
    finally:
        con.close()
    return {"version": PROFILE_VERSION, "num_rows": num_rows, "exact": exact,
            "columns": columns}


def _detect_pii(path: Path) -> dict[str, str]:
    """Return {column: kind} of the columns that look like personal data in the file's start."""
    import pyarrow.parquet as pq

    from loopml.data.pii import SAMPLE, detect

    batch = next(pq.ParquetFile(path).iter_batches(batch_size=SAMPLE), None)
    return {} if batch is None else {f.column: f.kind for f in detect(batch)}


def _value(name: str, arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_floating(arrow_type):  # NaN (as in pandas) and ±inf count as missing
        return f"CASE WHEN isfinite({quote(name)}) THEN {quote(name)} ELSE NULL END"
    return quote(name)


def _moments(con: duckdb.DuckDBPyConnection, table: str, fields: list[pa.Field],
             num_rows: int, *, exact: bool, pii: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """One scan: count, distinct, and min/max/mean/std/quantiles or text lengths, per column.

    PII columns get only counts, distinct and text lengths.
    """
    import pyarrow as pa

    quantile = "quantile_cont" if exact else "reservoir_quantile"
    qs = ", ".join(str(q) for q in QUANTILES)
    # The reference bins' inner edges: exact quantiles up to EDGE_SAMPLE rows (from the same
    # state as QUANTILES); above that, _sample_edges takes them from a sample of rows. One
    # text literal cast to DOUBLE[] binds faster than 49 numeric ones (wide files).
    inner_qs = ", ".join(map(repr, reference_probabilities()))
    shared = exact and num_rows <= EDGE_SAMPLE
    # Each value expression is computed once, in a subquery (v: as stored, d: as DOUBLE);
    # binding it again in every aggregate made DuckDB's planning the cost of wide scans.
    inner: list[str] = []
    select: list[str] = []
    plan: list[tuple[str, list[str]]] = []
    for index, field in enumerate(fields):
        kind = column_kind(field.type)
        v, d, value = f"v{index}", f"d{index}", _value(field.name, field.type)
        inner.append(f"{value} AS {v}")
        if not exact:
            distinct = f"approx_count_distinct({v})"
        elif num_rows <= LIST_DISTINCT_ROWS:  # planning dominates: list_unique binds ~6x faster
            distinct = f"coalesce(list_unique(list({v}) FILTER (WHERE {v} IS NOT NULL)), 0)"
        else:  # execution dominates: count(DISTINCT) runs ~5x faster on 2M rows
            distinct = f"count(DISTINCT {v})"
        keys = ["count", "distinct"]
        select += [f"count({v})", distinct]
        if field.name in pii and kind != "categorical":
            pass  # min, max and quantiles of a PII column are raw values
        elif kind == "numeric":
            inner.append(f"({value})::DOUBLE AS {d}")
            keys += ["min", "max", "mean", "std", "quantiles"]
            select += [f"min({d})", f"max({d})", f"avg({d})", f"stddev_samp({d})",
                       f"{quantile}({d}, '[{qs}, {inner_qs}]'::DOUBLE[])" if shared
                       else f"{quantile}({d}, [{qs}])"]
        elif kind == "datetime":
            inner.append(f"epoch({value})::DOUBLE AS {d}")
            keys += ["min", "max", "_low", "_high", "_mean", "_std"]
            select += [f"min({v})::VARCHAR", f"max({v})::VARCHAR", f"min({d})", f"max({d})",
                       f"avg({d})", f"stddev_samp({d})"]
            if shared:
                keys.append("_quantiles")
                select.append(f"quantile_cont({d}, '[{inner_qs}]'::DOUBLE[])")
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            inner.append(f"length({value}) AS {d}")
            keys += ["_len_min", "_len_max", "_len_mean"]
            select += [f"min({d})", f"max({d})", f"avg({d})"]
        plan.append((field.name, keys))
    row = con.execute(f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM "
                      f"{table})").fetchone()
    out: dict[str, dict[str, Any]] = {}
    position = 0
    for field, (name, keys) in zip(fields, plan, strict=True):
        values = dict(zip(keys, row[position:position + len(keys)], strict=True))
        position += len(keys)
        count = values["count"]
        stats: dict[str, Any] = {
            "type": str(field.type),
            "kind": column_kind(field.type),
            "count": count,
            "missing": num_rows - count,
            "missing_share": (num_rows - count) / num_rows if num_rows else 0.0,
            "distinct": values["distinct"],
        }
        if name in pii:
            stats["pii"] = pii[name]
            stats["top"] = []
        if "pii" in stats and stats["kind"] != "categorical":
            pass
        elif count and stats["kind"] == "numeric":
            quantiles = values["quantiles"]
            if shared:  # the edges' quantiles came in the same list
                quantiles, edges = quantiles[:len(QUANTILES)], quantiles[len(QUANTILES):]
                stats["_edges"] = reference_edges(values["min"], values["max"], edges)
            stats.update(min=values["min"], max=values["max"], mean=values["mean"],
                         std=_finite(values["std"]),
                         quantiles={str(q): x for q, x in zip(QUANTILES, quantiles,
                                                              strict=True)},
                         _mean=values["mean"], _std=_finite(values["std"]))
        elif count and stats["kind"] == "datetime":
            stats.update(min=values["min"], max=values["max"], histogram_unit="epoch seconds",
                         _low=values["_low"], _high=values["_high"],
                         _mean=values["_mean"], _std=_finite(values["_std"]))
            if shared:
                stats["_edges"] = reference_edges(values["_low"], values["_high"],
                                                  values["_quantiles"])
        elif count and "_len_min" in values:
            stats["length"] = {"min": values["_len_min"], "max": values["_len_max"],
                               "mean": values["_len_mean"]}
        out[name] = stats
    return out


def reference_probabilities(bins: int = REFERENCE_BINS) -> list[float]:
    """Return the inner quantile probabilities of ``bins`` equal-mass bins.

    >>> reference_probabilities(4)
    [0.25, 0.5, 0.75]
    """
    return [i / bins for i in range(1, bins)]


def reference_edges(low: float, high: float, inner: list[float]) -> list[float]:
    """Return the reference bins' edges: just below the min, the min, the quantiles, the max.

    Bins are closed on the right, ``(edges[i-1], edges[i]]``, as DuckDB's ``histogram(x,
    boundaries)`` counts them; the first edge is the largest double below the minimum, so the
    minimum's ties get a bin of their own (an integer column whose quantiles collapse keeps one
    bin per value) and nothing of the reference falls below ``edges[0]`` or above ``edges[-1]``.
    Duplicate edges are removed, so ``len(edges) - 1`` bins may be fewer than asked.

    >>> reference_edges(0.0, 2.0, [0.0, 0.0, 1.0, 1.0])
    [-5e-324, 0.0, 1.0, 2.0]
    """
    import numpy as np

    # Reservoir quantiles may fall outside [low, high]; the exact min and max bound them.
    points = np.clip(np.asarray([low, *inner, high], dtype=np.float64), low, high)
    points = np.unique(points[np.isfinite(points)])
    return [float(np.nextafter(low, -np.inf)), *points.tolist()]


def _sample_edges(con: duckdb.DuckDBPyConnection, table: str, fields: list[pa.Field],
                  columns: dict[str, dict[str, Any]]) -> None:
    """Set the reference edges of the columns that lack them from one sample of the rows.

    A reservoir of EDGE_SAMPLE rows drawn once for the whole chunk, with a fixed seed: a
    reservoir per column (reservoir_quantile) cost three times more, exact quantiles over
    49 more probabilities made profiling 1M x 25 70 % slower. A sample only moves a bin's mass
    by ~1 % of its share; the counts per bin stay exact.
    """
    inner, select, targets = [], [], []
    probabilities = "'[" + ", ".join(map(repr, reference_probabilities())) + "]'::DOUBLE[]"
    for field in fields:
        stats = columns[field.name]
        if not stats["count"] or stats["kind"] not in ("numeric", "datetime") \
                or "pii" in stats or "_edges" in stats:
            continue
        v = _value(field.name, field.type)
        expr = f"d{len(inner)}"
        inner.append((f"epoch({v})::DOUBLE" if stats["kind"] == "datetime"
                      else f"({v})::DOUBLE") + f" AS {expr}")
        select.append(f"quantile_cont({expr}, {probabilities})")
        targets.append(stats)
    if not select:
        return
    # One thread: DuckDB repeats a seeded sample only then, and the same file must always
    # give the same edges.
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        row = con.execute(f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM "
                          f"{table} USING SAMPLE reservoir({EDGE_SAMPLE} ROWS) REPEATABLE (7))"
                          ).fetchone()
    finally:
        con.execute(f"SET threads = {int(threads)}")
    for stats, quantiles in zip(targets, row, strict=True):
        low, high = (stats["_low"], stats["_high"]) if stats["kind"] == "datetime" \
            else (stats["min"], stats["max"])
        stats["_edges"] = reference_edges(low, high, [q for q in quantiles or []
                                                      if q is not None])


def _histograms(con: duckdb.DuckDBPyConnection, table: str, fields: list[pa.Field],
                columns: dict[str, dict[str, Any]]) -> None:
    """One scan: equal-width bins and the reference bins of every numeric and datetime column.

    The equal-width bins' last bin is closed on the right, as in numpy.histogram; the
    reference bins are closed on the right (see ``reference_edges``).
    """
    _sample_edges(con, table, fields, columns)
    inner, select, targets = [], [], []
    for field in fields:
        stats = columns[field.name]
        if not stats["count"] or stats["kind"] not in ("numeric", "datetime") \
                or "pii" in stats:
            continue
        low, high = (stats.pop("_low"), stats.pop("_high")) if stats["kind"] == "datetime" \
            else (stats["min"], stats["max"])
        edges, mean, std = stats.pop("_edges"), stats.pop("_mean"), stats.pop("_std")
        reference = {"edges": edges, "counts": [0] * (len(edges) - 1), "mean": mean, "std": std}
        stats["reference"] = reference
        if high == low:
            stats["histogram"] = {"edges": [low, high], "counts": [stats["count"]]}
            reference["counts"] = [stats["count"]]
            continue
        v = _value(field.name, field.type)
        expr = f"d{len(inner)}"  # computed once in the subquery, as in _moments
        inner.append((f"epoch({v})::DOUBLE" if stats["kind"] == "datetime"
                      else f"({v})::DOUBLE") + f" AS {expr}")
        width = (high - low) / BINS
        # FILTER, not a NULL check inside: DuckDB's least() skips NULL arguments. Binned
        # histogram() over the bin index: DuckDB binds it ~3x faster than the plain one,
        # which matters for thousands of columns.
        select.append(f"histogram(least(floor(({expr} - {low!r}) / {width!r})::BIGINT, "
                      f"{BINS - 1}), range(0, {BINS})) FILTER (WHERE {expr} IS NOT NULL)")
        # Explicit boundaries: a value goes to the first boundary >= it (the bins' right
        # edges); values above the last go to +inf, which the exact max makes empty.
        # No FILTER: this form skips NULLs itself, and a FILTER doubled its cost on wide
        # files. One text literal cast to DOUBLE[] binds faster than 50 numeric literals;
        # repr() round-trips every double.
        bounds = "'[" + ", ".join(repr(edge) for edge in edges[1:]) + "]'"
        select.append(f"histogram({expr}, {bounds}::DOUBLE[])")
        targets.append((stats, low, high, width))
    if not select:
        return
    row = con.execute(f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM "
                      f"{table})").fetchone()
    for index, (stats, low, high, width) in enumerate(targets):
        counts_by_bin, by_bound = row[2 * index], row[2 * index + 1]
        counts = [0] * BINS
        for bin_index, n in (counts_by_bin or {}).items():
            if bin_index is not None:
                counts[int(bin_index)] = n
        stats["histogram"] = {"edges": [low + i * width for i in range(BINS)] + [high],
                              "counts": counts}
        stats["reference"]["counts"] = _bound_counts(stats["reference"]["edges"], by_bound)


def _bound_counts(edges: list[float], by_bound: Mapping[float, int] | None) -> list[int]:
    """Return counts per reference bin from DuckDB's {right boundary: count} map."""
    import bisect

    counts = [0] * (len(edges) - 1)
    bounds = edges[1:]
    for bound, n in (by_bound or {}).items():
        # +inf (above the max) cannot happen with exact edges; clamp it to the last bin
        position = min(bisect.bisect_left(bounds, bound), len(counts) - 1)
        counts[position] += n
    return counts


def _categorical(con: duckdb.DuckDBPyConnection, table: str, value: str,
                 arrow_type: pa.DataType, stats: dict[str, Any]) -> dict[str, Any]:
    """Top values; skipped for text that differs in (almost) every row, like ids or e-mails."""
    if stats["distinct"] > max(TOP, stats["count"] // 2):
        return {"top": []}
    top = con.execute(
        f"SELECT v, count(*) AS n FROM (SELECT {value}::VARCHAR AS v FROM {table} "
        f"WHERE {value} IS NOT NULL) GROUP BY v ORDER BY n DESC, v LIMIT {TOP}"
    ).fetchall()
    return {"top": [[v, n] for v, n in top]}


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
