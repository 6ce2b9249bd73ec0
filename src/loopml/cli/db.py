"""`loopml db`: the metadata store's schema."""

from __future__ import annotations

import typer

from loopml.cli.common import HomeOption, sub_app

app = sub_app("The metadata store's schema.")


@app.command("upgrade")
def db_upgrade(home: HomeOption = None) -> None:
    """Create or migrate the metadata store to this loopml's schema."""
    from loopml.errors import StoreUnavailable
    from loopml.store import Store
    from loopml.workspace import Workspace

    workspace = Workspace.from_env(home)
    if workspace.store_uri.startswith("sqlite:///"):
        try:
            workspace.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create workspace folder {workspace.home}: "
                                   f"{exc.strerror} (set LOOPML_HOME to a writable folder)"
                                   ) from exc
    store = Store(workspace.store_uri)
    before, after = store.upgrade()
    if before == after:
        typer.echo(f"{store.display_url}: schema already at {after}")
    else:
        typer.echo(f"{store.display_url}: schema {before or 'empty'} -> {after}")


@app.command("current")
def db_current(home: HomeOption = None) -> None:
    """Print the schema version of the metadata store and the one this loopml needs."""
    from sqlalchemy.exc import DBAPIError

    from loopml.errors import StoreUnavailable
    from loopml.store import Store, migrate
    from loopml.store.engine import get_engine
    from loopml.workspace import Workspace

    store = Store(Workspace.from_env(home).require().store_uri)  # never creates one
    try:
        with get_engine(store.url).connect() as conn:
            revision = migrate.current_revision(conn)
    except DBAPIError as exc:  # worded as Store.connect words it: one line, no password
        detail = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        raise StoreUnavailable(f"cannot open store {store.display_url}: {detail[0]}") from exc
    typer.echo(f"{store.display_url}: schema {revision or 'empty'} (this loopml: {migrate.HEAD})")
