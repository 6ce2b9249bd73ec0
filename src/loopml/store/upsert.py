"""Insert-or-ignore and insert-or-update, spelled for each backend (both speak ON CONFLICT)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose key already exists."""
    if rows:
        conn.execute(_dialect_insert(conn, table).on_conflict_do_nothing(), rows)


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    key: list[str],
    update: list[str],
    only_if: Any = None,
) -> None:
    """Insert ``rows``; where ``key`` exists, overwrite the ``update`` columns.

    ``only_if`` is an optional callable ``(table, excluded) -> clause`` that limits the
    overwrite (for example to newer steps).
    """
    if not rows:
        return
    stmt = _dialect_insert(conn, table)
    where = only_if(table, stmt.excluded) if only_if is not None else None
    stmt = stmt.on_conflict_do_update(
        index_elements=key,
        set_={column: stmt.excluded[column] for column in update},
        where=where,
    )
    conn.execute(stmt, rows)
