"""Where loopml keeps its state: a metadata store URL and an artifact root.

``LOOPML_HOME`` (default ``./.loopml``) holds ``loopml.db`` and ``artifacts/``.
``LOOPML_STORE_URI`` (any SQLAlchemy URL) and ``LOOPML_ARTIFACTS_URI`` (a path or an
fsspec URL) override either part, for example to use PostgreSQL and S3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import StoreUnavailable

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store

DEFAULT_HOME = ".loopml"


@dataclass(frozen=True)
class Workspace:
    """The settings of one workspace; :meth:`open` connects to it."""

    home: Path
    store_uri: str
    artifacts_uri: str

    @classmethod
    def from_env(
        cls, home: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
    ) -> Workspace:
        """Build the settings from an explicit home or the LOOPML_* environment variables.

        >>> Workspace.from_env("/tmp/ws", env={}).store_uri
        'sqlite:////tmp/ws/loopml.db'
        """
        env = os.environ if env is None else env
        home_path = Path(home or env.get("LOOPML_HOME") or DEFAULT_HOME).expanduser().absolute()
        store_uri = env.get("LOOPML_STORE_URI") or f"sqlite:///{home_path / 'loopml.db'}"
        artifacts_uri = env.get("LOOPML_ARTIFACTS_URI") or str(home_path / "artifacts")
        return cls(home=home_path, store_uri=store_uri, artifacts_uri=artifacts_uri)

    def exists(self) -> bool:
        """Return whether this workspace's metadata store is there (always true for a server).

        >>> Workspace.from_env("/nonexistent/ws", env={}).exists()
        False
        """
        database = self._sqlite_file()
        return database is None or database.is_file()

    def _sqlite_file(self) -> Path | None:
        """Return the SQLite file of the store, or None for a server or in-memory database."""
        from sqlalchemy.engine import make_url

        if not self.store_uri.startswith("sqlite:"):
            return None  # a server database: connecting tells whether it is there
        database = make_url(self.store_uri).database
        if not database or database == ":memory:":
            return None
        return Path(database).expanduser()

    def require(self) -> Workspace:
        """Return self if the workspace exists; raise StoreUnavailable ("no workspace at …")."""
        if not self.exists():
            raise StoreUnavailable(
                f"no workspace at {self.home} ({self._sqlite_file()} does not exist): check "
                "--home / LOOPML_HOME, or create one with `loopml data add` or `loopml train`"
            )
        return self

    def open(self, *, create: bool = True) -> tuple[Store, ArtifactStore]:
        """Connect to the metadata store and the artifact store.

        With ``create`` (commands that write) a missing workspace is made; without it
        (commands that only read) a missing one is an error and nothing is created, so a
        mistyped ``--home`` leaves no empty workspace behind.
        """
        from loopml.artifacts import ArtifactStore
        from loopml.store import Store

        if not create:
            self.require()
        if self.store_uri.startswith("sqlite:///") and create:
            try:
                self.home.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create workspace folder {self.home}: {exc.strerror} "
                    "(set LOOPML_HOME to a writable folder)"
                ) from exc
        store = Store(self.store_uri).connect(create=create)
        artifacts = ArtifactStore(self.artifacts_uri).connect(create=create)
        return store, artifacts
