"""The metadata store: one SQLAlchemy database, opened explicitly, used in transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from loopml.errors import ConstraintError, StoreError, StoreUnavailable
from loopml.store import migrate
from loopml.store.engine import backend_of, get_engine

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from loopml.store.artifact_index import ArtifactIndex
    from loopml.store.datasets import Datasets
    from loopml.store.metrics import Metrics
    from loopml.store.models import Models
    from loopml.store.monitoring import Monitoring
    from loopml.store.runs import Runs
    from loopml.store.tokens import Tokens


class Store:
    """The metadata store at a SQLAlchemy URL.

    The constructor only records the URL; :meth:`connect` opens the database, creates the
    schema on first use and refuses a schema from another loopml version.

    Examples
    --------
    >>> store = Store("sqlite:///:memory:").connect()   # doctest: +SKIP
    >>> store.runs.create(project="demo", name="baseline")   # doctest: +SKIP
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.backend = backend_of(url)
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Store.connect() must be called before the store is used")
        return self._engine

    def connect(self, *, create: bool = True) -> Store:
        """Open the database and check its schema; with ``create``, set up an empty one."""
        from sqlalchemy.exc import DBAPIError

        engine = get_engine(self.url)
        try:
            with engine.connect() as conn:
                revision = migrate.current_revision(conn)
            if revision is None and create:
                migrate.upgrade(engine, only_if_empty=True)
            else:
                migrate.check_revision(revision, url=self.display_url)
        except DBAPIError as exc:
            raise StoreUnavailable(
                f"cannot open store {self.display_url}: {_first_line(exc.orig or exc)}"
            ) from exc
        self._engine = engine
        return self

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate the schema to this loopml's version; return (before, after)."""
        from sqlalchemy.exc import DBAPIError

        engine = get_engine(self.url)
        try:
            result = migrate.upgrade(engine)
        except DBAPIError as exc:
            raise StoreUnavailable(
                f"cannot upgrade store {self.display_url}: {_first_line(exc.orig or exc)}"
            ) from exc
        self._engine = engine
        return result

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Yield a connection in a read transaction."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Yield a connection in a write transaction, committed when the block ends.

        Driver errors leave as loopml errors: a broken constraint as ConstraintError,
        anything else (a lock held too long, a lost connection) as StoreError.
        """
        from sqlalchemy.exc import DBAPIError

        try:
            with self.engine.connect() as conn:
                conn.execution_options(loopml_write=True)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> StoreError:
        from sqlalchemy.exc import IntegrityError

        detail = _first_line(getattr(exc, "orig", None) or exc)
        if isinstance(exc, IntegrityError):
            return ConstraintError(f"store {self.display_url} refused a write: {detail} "
                                   "(was the run or dataset deleted meanwhile?)")
        return StoreError(f"store {self.display_url} failed: {detail}")

    @cached_property
    def runs(self) -> Runs:
        from loopml.store.runs import Runs

        return Runs(self)

    @cached_property
    def metrics(self) -> Metrics:
        from loopml.store.metrics import Metrics

        return Metrics(self)

    @cached_property
    def datasets(self) -> Datasets:
        from loopml.store.datasets import Datasets

        return Datasets(self)

    @cached_property
    def models(self) -> Models:
        from loopml.store.models import Models

        return Models(self)

    @cached_property
    def tokens(self) -> Tokens:
        from loopml.store.tokens import Tokens

        return Tokens(self)

    @cached_property
    def monitoring(self) -> Monitoring:
        from loopml.store.monitoring import Monitoring

        return Monitoring(self)

    @cached_property
    def artifacts(self) -> ArtifactIndex:
        from loopml.store.artifact_index import ArtifactIndex

        return ArtifactIndex(self)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
