"""Schema versions of the metadata store, and applying Alembic migrations safely.

Checking the version is a single query and needs no Alembic import; migrating imports
Alembic and runs under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so many processes opening a fresh workspace at once create it exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import SchemaMismatch, StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# Every revision in migrations/versions, oldest first. tests/store/test_migrations.py
# checks this against Alembic's own history, so a new migration must be added here too.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005")
HEAD = REVISIONS[-1]
VERSION_TABLE = "alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6C6F6F706D6C  # "loopml"


def current_revision(conn: Connection) -> str | None:
    """Return the schema revision stored in the database, or None for an empty database."""
    from sqlalchemy import inspect, text

    inspector = inspect(conn)
    if not inspector.has_table(VERSION_TABLE):
        if inspector.has_table("runs"):
            raise StoreError(
                "the database has loopml-like tables but no schema version: "
                "it was not created by loopml; point LOOPML_STORE_URI at an empty database"
            )
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows[0] if rows else None


def check_revision(revision: str | None, *, url: str) -> None:
    """Raise SchemaMismatch unless ``revision`` is this loopml's head revision."""
    if revision == HEAD:
        return
    if revision in REVISIONS:
        raise SchemaMismatch(
            f"store {url} has schema {revision}, older than this loopml's {HEAD}: "
            "run `loopml db upgrade` (back up the database first)"
        )
    raise SchemaMismatch(
        f"store {url} has schema {revision!r}, which this loopml (schema {HEAD}) does not "
        "know: it was written by a newer loopml; upgrade loopml (pip install -U loopml)"
    )


def upgrade(engine: Engine, *, only_if_empty: bool = False) -> tuple[str | None, str]:
    """Migrate the database to HEAD under a lock; return (revision before, revision after).

    With ``only_if_empty`` the call creates a fresh schema and leaves an existing one
    alone: that is what first use does, while ``loopml db upgrade`` migrates old ones.
    """
    with engine.connect() as conn:
        conn.execution_options(loopml_write=True)
        with conn.begin():
            _take_migration_lock(conn)
            before = current_revision(conn)
            if before is not None and before not in REVISIONS:
                check_revision(before, url=_safe_url(engine))
            if before == HEAD or (only_if_empty and before is not None):
                return before, before or HEAD
            _run_alembic(conn)
            return before, HEAD


def _take_migration_lock(conn: Connection) -> None:
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    # SQLite: the write transaction began with BEGIN IMMEDIATE, which is the lock.


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
