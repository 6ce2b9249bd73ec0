"""Shared fixtures. Store tests run once per backend: SQLite, and PostgreSQL.

PostgreSQL comes from ``LOOPML_TEST_POSTGRES_URL`` if set, otherwise from a throwaway
server started with the machine's PostgreSQL binaries. Without either, PostgreSQL cases
are skipped, unless ``LOOPML_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pg_server import PostgresServer  # noqa: E402

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("LOOPML_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    server = PostgresServer()
    if not server.available:
        message = ("PostgreSQL binaries (initdb, pg_ctl) not found: install Debian's postgresql "
                   "or set LOOPML_TEST_POSTGRES_URL")
        if os.environ.get("LOOPML_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield server.start()
    finally:
        server.stop()


def _fresh_schema_url(base_url: str) -> str:
    """Create an empty schema on the server and return a URL whose search_path is it."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopml.db'}"
    return _fresh_schema_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'loopml.db'}"


@pytest.fixture
def store(store_url: str):
    from loopml.store import Store

    return Store(store_url).connect()


@pytest.fixture
def artifacts(tmp_path: Path):
    from loopml.artifacts import ArtifactStore

    return ArtifactStore(str(tmp_path / "artifacts")).connect()


@pytest.fixture
def client(store, artifacts):
    from loopml.tracking import TrackingClient

    client = TrackingClient(store, artifacts)
    yield client
    client.close()


@pytest.fixture
def workspace_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point LOOPML_HOME at a fresh folder for code that reads the environment."""
    home = tmp_path / "ws"
    monkeypatch.setenv("LOOPML_HOME", str(home))
    monkeypatch.delenv("LOOPML_STORE_URI", raising=False)
    monkeypatch.delenv("LOOPML_ARTIFACTS_URI", raising=False)
    return home
