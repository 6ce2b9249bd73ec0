"""Schema versions: created on first use, checked on every open, upgraded explicitly."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from loopml.errors import InvalidInput, SchemaMismatch, StoreError, StoreUnavailable
from loopml.store import Store, migrate
from loopml.store.engine import dispose_engine


def test_revision_list_matches_alembic_history():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    history = [s.revision for s in ScriptDirectory.from_config(config).walk_revisions()]
    assert tuple(reversed(history)) == migrate.REVISIONS


def test_migrated_schema_equals_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from loopml.store.schema import Base

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert migrate.current_revision(conn) == migrate.HEAD


def _set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_store_from_a_newer_loopml_is_refused(store_url):
    Store(store_url).connect()
    _set_revision(store_url, "9999")
    dispose_engine(store_url)
    with pytest.raises(SchemaMismatch, match="'9999'.*newer loopml; upgrade loopml"):
        Store(store_url).connect()
    with pytest.raises(SchemaMismatch, match="newer loopml"):
        Store(store_url).upgrade()


def _create_at_revision(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_older_store_asks_for_upgrade_and_upgrade_keeps_the_data(store_url):
    _create_at_revision(store_url, migrate.REVISIONS[0])
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (name, created_at) VALUES ('p', :t)"),
                     {"t": "2026-01-01 00:00:00"})
        conn.execute(text("INSERT INTO runs (id, project_id, name, status, start_time) "
                          "VALUES (:id, 1, 'old', 'FINISHED', :t)"),
                     {"id": "a" * 32, "t": "2026-01-01 00:00:00"})
    engine.dispose()
    with pytest.raises(SchemaMismatch, match=f"older than this loopml's {migrate.HEAD}: "
                                             "run `loopml db upgrade`"):
        Store(store_url).connect()
    assert Store(store_url).upgrade() == (migrate.REVISIONS[0], migrate.HEAD)
    assert Store(store_url).upgrade() == (migrate.HEAD, migrate.HEAD)  # idempotent
    store = Store(store_url).connect()
    assert [r.name for r in store.runs.list()] == ["old"]


def test_upgrade_creates_an_empty_store(store_url):
    before, after = Store(store_url).upgrade()
    assert (before, after) == (None, migrate.HEAD)
    assert Store(store_url).connect(create=False).runs.list() == []


def test_open_without_create_refuses_an_empty_database(sqlite_url):
    with pytest.raises(SchemaMismatch):
        Store(sqlite_url).connect(create=False)


def test_foreign_database_is_refused(sqlite_url):
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (x INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not created by loopml"):
        Store(sqlite_url).connect()


@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("mysql://u@h/db", InvalidInput, "not supported"),
        ("nonsense", InvalidInput, "not supported"),
        ("sqlite:////no/such/folder/loopml.db", StoreUnavailable, "folder /no/such/folder"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", StoreUnavailable, "cannot open store"),
    ],
)
def test_unusable_store_uris_are_clear_errors(url, error, match):
    with pytest.raises(error, match=match):
        Store(url).connect()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable, match="file is not a database"):
        Store(f"sqlite:///{path}").connect()
