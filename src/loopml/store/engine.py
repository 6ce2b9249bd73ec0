"""SQLAlchemy engines for the metadata store, one per URL per process.

Backends are chosen by the URL's scheme. SQLite gets WAL mode, a busy timeout,
foreign keys and ``BEGIN IMMEDIATE`` for write transactions, so concurrent writers
from many processes queue for the lock instead of failing with "database is locked"
when a read transaction tries to upgrade to a write. PostgreSQL needs nothing special.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_S = 60.0
SUPPORTED_SCHEMES = ("sqlite", "postgresql")

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _forget_engines_in_child() -> None:
    # A forked child must not reuse the parent's pooled connections.
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


def backend_of(url: str) -> str:
    """Return the backend name of a store URL.

    >>> backend_of("postgresql+psycopg://u@h/db")
    'postgresql'
    """
    scheme = url.split(":", 1)[0]
    backend = scheme.split("+", 1)[0]
    if "://" not in url or backend not in SUPPORTED_SCHEMES:
        raise InvalidInput(
            f"store URI {url!r} is not supported: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB (set LOOPML_STORE_URI)"
        )
    return backend


def get_engine(url: str) -> Engine:
    """Return this process's engine for ``url``, creating it on first use."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close the pooled connections of ``url``'s engine, if there is one."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _create_engine(url: str) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    backend = backend_of(url)
    try:
        if backend == "sqlite":
            engine = _create_sqlite_engine(url, create_engine, event)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreUnavailable(f"cannot open store {url!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StoreUnavailable(
            f"cannot open store {url!r}: driver {exc.name!r} is not installed "
            "(for PostgreSQL: pip install 'loopml[postgres]')"
        ) from exc
    return engine


def _create_sqlite_engine(url: str, create_engine: Any, event: Any) -> Engine:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreUnavailable(
                f"cannot open store {url!r}: folder {folder} does not exist "
                "(create it, or point LOOPML_HOME / LOOPML_STORE_URI elsewhere)"
            )
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("loopml_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
