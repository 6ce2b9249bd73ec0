"""Per-column profiles of a Parquet snapshot, computed by DuckDB out of core.

A profile holds what people read (type, missing share, distinct count, min/max/mean/std,
quantiles, top values) and what monitoring needs later to test drift without re-reading
the data: a histogram with its bin edges for every numeric and datetime column, and value
counts for every categorical one. Statistics are exact up to ``EXACT_ROWS`` rows; above
that, distinct counts and quantiles are DuckDB's approximations (HyperLogLog, t-digest).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP = 50
EXACT_ROWS = 5_000_000
PROFILE_VERSION = 1


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
    import duckdb

    return duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})


def profile_parquet(path: Path, schema: pa.Schema) -> dict[str, Any]:
    """Return the profile of the Parquet file at ``path`` as a JSON-ready dict."""
    con = connect()
    literal = "'" + str(path).replace("'", "''") + "'"  # DDL cannot take parameters
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({literal})")
    num_rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    exact = num_rows <= EXACT_ROWS
    columns = {}
    for field in schema:
        columns[field.name] = _profile_column(con, field, num_rows, exact=exact)
    con.close()
    return {"version": PROFILE_VERSION, "num_rows": num_rows, "exact": exact,
            "columns": columns}


def _value(name: str, arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_floating(arrow_type):  # NaN counts as missing, as in pandas
        return f"CASE WHEN isnan({quote(name)}) THEN NULL ELSE {quote(name)} END"
    return quote(name)


def _profile_column(con: duckdb.DuckDBPyConnection, field: pa.Field, num_rows: int, *,
                    exact: bool) -> dict[str, Any]:
    kind = column_kind(field.type)
    value = _value(field.name, field.type)
    distinct = f"count(DISTINCT {value})" if exact else f"approx_count_distinct({value})"
    count, unique = con.execute(f"SELECT count({value}), {distinct} FROM t").fetchone()
    out: dict[str, Any] = {
        "type": str(field.type),
        "kind": kind,
        "count": count,
        "missing": num_rows - count,
        "missing_share": (num_rows - count) / num_rows if num_rows else 0.0,
        "distinct": unique,
    }
    if count == 0:
        return out
    if kind == "numeric":
        out.update(_numeric(con, value, exact=exact))
    elif kind == "datetime":
        out.update(_datetime(con, value))
    elif kind == "categorical":
        out.update(_categorical(con, value, field.type))
    return out


def _numeric(con: duckdb.DuckDBPyConnection, value: str, *, exact: bool) -> dict[str, Any]:
    quantile = "quantile_cont" if exact else "approx_quantile"
    qs = ", ".join(str(q) for q in QUANTILES)
    low, high, mean, std, quantiles = con.execute(
        f"SELECT min({value})::DOUBLE, max({value})::DOUBLE, avg({value}::DOUBLE), "
        f"stddev_samp({value}::DOUBLE), {quantile}({value}::DOUBLE, [{qs}]) FROM t"
    ).fetchone()
    return {
        "min": low, "max": high, "mean": mean, "std": _finite(std),
        "quantiles": {str(q): v for q, v in zip(QUANTILES, quantiles, strict=True)},
        "histogram": _histogram(con, f"{value}::DOUBLE", low, high),
    }


def _datetime(con: duckdb.DuckDBPyConnection, value: str) -> dict[str, Any]:
    epoch = f"epoch({value})::DOUBLE"
    low, high, first, last = con.execute(
        f"SELECT min({epoch}), max({epoch}), min({value})::VARCHAR, max({value})::VARCHAR FROM t"
    ).fetchone()
    return {"min": first, "max": last, "histogram": _histogram(con, epoch, low, high),
            "histogram_unit": "epoch seconds"}


def _histogram(con: duckdb.DuckDBPyConnection, expr: str, low: float, high: float
               ) -> dict[str, list[float]]:
    """Equal-width bins over [low, high]; the last bin is closed on the right."""
    if high == low:
        edges = [low, high]
        count = con.execute(f"SELECT count({expr}) FROM t").fetchone()[0]
        return {"edges": edges, "counts": [count]}
    width = (high - low) / BINS
    rows = con.execute(
        f"SELECT bin, count(*) FROM (SELECT least(floor(({expr} - {low!r}) / {width!r})::BIGINT, "
        f"{BINS - 1}) AS bin FROM t WHERE {expr} IS NOT NULL) GROUP BY bin ORDER BY bin"
    ).fetchall()
    counts = [0] * BINS
    for bin_index, n in rows:
        counts[int(bin_index)] = n
    return {"edges": [low + i * width for i in range(BINS)] + [high], "counts": counts}


def _categorical(con: duckdb.DuckDBPyConnection, value: str, arrow_type: pa.DataType
                 ) -> dict[str, Any]:
    import pyarrow as pa

    top = con.execute(
        f"SELECT v, count(*) AS n FROM (SELECT {value}::VARCHAR AS v FROM t "
        f"WHERE {value} IS NOT NULL) GROUP BY v ORDER BY n DESC, v LIMIT {TOP}"
    ).fetchall()
    out: dict[str, Any] = {"top": [[v, n] for v, n in top]}
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        low, high, mean = con.execute(
            f"SELECT min(length({value})), max(length({value})), avg(length({value})) FROM t"
        ).fetchone()
        out["length"] = {"min": low, "max": high, "mean": mean}
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
