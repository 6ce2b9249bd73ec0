"""Check new data against a contract and report every violation, with counts and examples.

The source is read with every CSV column as text, so a numeric column holding "n/a" is
reported as a type violation rather than silently turned into a missing value or a
string column. Checks run in DuckDB over a temporary Parquet copy.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data.contract import ColumnRule, Contract
from loopml.data.pii import looks_personal, mask
from loopml.data.profile import COLUMNS_PER_QUERY, chunks, connect, quote
from loopml.data.sources import Source

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

EXAMPLES = 5
_BOOLEAN_TEXT = ("true", "false", "t", "f", "yes", "no", "1", "0")


@dataclass(frozen=True)
class Violation:
    column: str
    rule: str
    rows: int
    message: str
    examples: list[str] = field(default_factory=list)
    severity: str = "error"  # "error" fails validation, "warning" does not


@dataclass(frozen=True)
class ValidationReport:
    source: str
    dataset: str
    num_rows: int
    violations: list[Violation]

    @property
    def passed(self) -> bool:
        return not any(v.severity == "error" for v in self.violations)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "dataset": self.dataset, "num_rows": self.num_rows,
                "passed": self.passed, "violations": [asdict(v) for v in self.violations]}


def validate(source: Source, contract: Contract) -> ValidationReport:
    """Return the violations of ``contract`` in ``source``."""
    from loopml.data.snapshot import check_columns, check_unterminated_quote
    from loopml.data.sources import read_batches

    text_source = source if source.kind != "csv" else _as_text(source)
    schema, batches = read_batches(text_source)
    check_columns(source, schema)
    # Columns the contract marks as personal, and any that look personal in this data:
    # their values are shown masked in examples and errors.
    sensitive = {name: rule.pii for name, rule in contract.columns.items() if rule.pii}
    with tempfile.TemporaryDirectory(prefix=f"loopml-validate-{os.getpid()}-") as tmp:
        path = Path(tmp, "data.parquet")
        last: list[pa.RecordBatch] = []
        rows = _write(path, _keep_last(_detecting(batches, sensitive), last), schema)
        check_unterminated_quote(source, last[0] if last else None)  # rows it would swallow
        con = connect()
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({literal})")
        violations = _check(con, schema.names, contract, rows, sensitive=sensitive,
                            table=f"read_parquet({literal})")
        con.close()
    return ValidationReport(source=source.describe(), dataset=contract.dataset, num_rows=rows,
                            violations=violations)


def _detecting(batches: Iterator[pa.RecordBatch], sensitive: dict[str, str]
               ) -> Iterator[pa.RecordBatch]:
    """Yield normalized batches; add personal columns of the first one to ``sensitive``."""
    from loopml.data import pii
    from loopml.data.snapshot import mask_reader_errors, normalize

    for index, raw in enumerate(mask_reader_errors(batches, sensitive)):
        batch = normalize(raw)
        if index == 0:
            for finding in pii.detect(batch):
                sensitive.setdefault(finding.column, finding.kind)
        yield batch


def _keep_last(batches: Iterator[pa.RecordBatch], last: list[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        last[:] = [batch]
        yield batch


def _as_text(source: Source) -> Source:
    from dataclasses import replace

    return replace(source, kind="csv-text")


def _write(path: Path, batches: Any, schema: Any) -> int:
    import pyarrow.parquet as pq

    rows = 0
    writer = None
    try:
        for batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema)
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:
            import pyarrow as pa

            writer = pq.ParquetWriter(path, pa.schema(
                [(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in schema]
            ))
    finally:
        if writer is not None:
            writer.close()
    return rows


def _check(con: duckdb.DuckDBPyConnection, names: list[str], contract: Contract, rows: int,
           *, sensitive: dict[str, str], table: str = "t") -> list[Violation]:
    out: list[Violation] = []
    if rows == 0:
        out.append(Violation("*", "rows", 0, "the data has no rows"))
    counts = _count_conditions(con, [(name, rule) for name, rule in contract.columns.items()
                                     if name in names], table=table) if rows else {}
    for name, rule in contract.columns.items():
        if name not in names:
            what = "target column" if name == contract.target else "column"
            out.append(Violation(name, "missing_column", rows,
                                 f"{what} {name!r} is missing from the data"))
            continue
        if rows:
            out.extend(replace(v, examples=[_example(e, sensitive.get(name))
                                            for e in v.examples])
                       for v in _check_column(con, name, rule, counts))
    if contract.target and contract.target not in contract.columns and \
            contract.target not in names:
        out.append(Violation(contract.target, "missing_column", rows,
                             f"target column {contract.target!r} is missing from the data"))
    for name in names:
        if name not in contract.columns:
            out.append(Violation(
                name, "unexpected_column", rows,
                f"column {name!r} is not in the contract",
                severity="warning" if contract.allow_extra_columns else "error",
            ))
    return out


def _example(value: str, kind: str | None) -> str:
    """Return an example value as reports show it: masked if personal, or if it looks so.

    >>> _example("n/a", None), _example("ann@example.org", None)
    ('n/a', "'ann@…rg' (email, masked)")
    """
    if value == "null":
        return value
    kind = kind or looks_personal(value)
    return mask(value, kind) if kind else value


def _literal(value: float) -> str:
    """Return a number as a DuckDB literal, infinities included.

    >>> _literal(3), _literal(float("inf"))
    ('3', "'inf'::DOUBLE")
    """
    return repr(value) if math.isfinite(value) else f"'{value!r}'::DOUBLE"


def _count_conditions(con: duckdb.DuckDBPyConnection, columns: list[tuple[str, ColumnRule]],
                      *, table: str = "t") -> dict[str, int]:
    """Return {condition: rows matching it} for every check of ``columns``.

    One scan counts the checks of a chunk of columns: one query a check took minutes on
    thousands of columns.
    """
    counts: dict[str, int] = {}
    for chunk in chunks(columns, COLUMNS_PER_QUERY):
        wanted: dict[str, int] = {}
        for name, rule in chunk:
            _check_column(None, name, rule, wanted)
        if wanted:
            row = con.execute("SELECT " + ", ".join(
                f"count(*) FILTER (WHERE {condition})" for condition in wanted) + f" FROM {table}"
            ).fetchone()
            counts.update(zip(wanted, row, strict=True))
    return counts


def _count_and_examples(con: duckdb.DuckDBPyConnection, value: str, condition: str,
                        counts: dict[str, int] | None = None) -> tuple[int, list[str]]:
    count = counts[condition] if counts and condition in counts else \
        con.execute(f"SELECT count(*) FROM t WHERE {condition}").fetchone()[0]
    if count == 0:
        return 0, []
    examples = con.execute(
        f"SELECT DISTINCT {value}::VARCHAR AS example FROM t WHERE {condition} "
        f"ORDER BY example NULLS FIRST LIMIT {EXAMPLES}"
    ).fetchall()
    return count, ["null" if e is None else e for (e,) in examples]


def _check_column(con: duckdb.DuckDBPyConnection | None, name: str, rule: ColumnRule,
                  counts: dict[str, int] | None = None) -> list[Violation]:
    """Return the violations of ``rule`` in column ``name``, using counts known already.

    With ``con`` None, only list the conditions to count: as keys of ``counts``.
    """
    col = quote(name)
    text = f"{col}::VARCHAR"
    out: list[Violation] = []

    def report(rule_name: str, condition: str, message: str, value: str = col) -> None:
        if con is None:
            if counts is not None:
                counts[condition] = 0
            return
        count, examples = _count_and_examples(con, value, condition, counts)
        if count:
            out.append(Violation(name, rule_name, count, message, examples))

    number = f"TRY_CAST(trim({text}) AS DOUBLE)"
    present = f"{col} IS NOT NULL AND trim({text}) <> ''"
    if rule.type in ("integer", "number"):
        report("type", f"{present} AND {number} IS NULL", f"expected {rule.type}s, found text")
        if rule.type == "integer":
            report("type", f"{number} IS NOT NULL AND {number} <> floor({number})",
                   "expected integers, found fractions")
    elif rule.type == "boolean":
        allowed = ", ".join(f"'{v}'" for v in _BOOLEAN_TEXT)
        report("type", f"{present} AND lower(trim({text})) NOT IN ({allowed})",
               "expected true/false values")
    elif rule.type == "datetime":
        report("type", f"{present} AND TRY_CAST(trim({text}) AS TIMESTAMP) IS NULL",
               "expected dates or timestamps")

    # NaN and infinities count as missing, as in the profile the contract was inferred from.
    numeric = rule.type in ("integer", "number")
    missing = f"{col} IS NULL OR trim({text}) = ''" + (
        f" OR NOT isfinite({number})" if numeric else "")
    finite = f"isfinite({number}) AND " if numeric else ""
    if not rule.nullable:
        report("nullable", missing, "missing values in a column the contract says is never "
               "missing")
    if rule.min is not None:
        report("min", f"{finite}{number} < {_literal(rule.min)}", f"values below the minimum "
               f"{rule.min:g}")
    if rule.max is not None:
        report("max", f"{finite}{number} > {_literal(rule.max)}", f"values above the maximum "
               f"{rule.max:g}")
    if rule.allowed is not None:
        listed = ", ".join("'" + v.replace("'", "''") + "'" for v in rule.allowed)
        report("allowed", f"{present} AND {text} NOT IN ({listed})",
               f"values outside the {len(rule.allowed)} allowed categories")
    if rule.unique and con is not None:
        duplicated = con.execute(
            f"SELECT count(*) - count(DISTINCT {col}) FROM t WHERE {col} IS NOT NULL"
        ).fetchone()[0]
        if duplicated:
            examples = con.execute(
                f"SELECT {text} AS example FROM t WHERE {col} IS NOT NULL GROUP BY {col} "
                f"HAVING count(*) > 1 ORDER BY example LIMIT {EXAMPLES}"
            ).fetchall()
            out.append(Violation(name, "unique", duplicated, "duplicate values in a unique "
                                 "column", [e for (e,) in examples]))
    return out
