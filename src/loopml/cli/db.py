"""`loopml db`: the metadata store's schema."""

from __future__ import annotations

import typer

from loopml.cli.common import HomeOption, sub_app

app = sub_app("The metadata store's schema.")


@app.command("upgrade")
def db_upgrade(home: HomeOption = None) -> None:
    """Create or migrate the metadata store to this loopml's schema."""
    from loopml.store import Store
    from loopml.workspace import Workspace

    workspace = Workspace.from_env(home)
    if workspace.store_uri.startswith("sqlite:///"):
        workspace.home.mkdir(parents=True, exist_ok=True)
    store = Store(workspace.store_uri)
    before, after = store.upgrade()
    if before == after:
        typer.echo(f"{store.display_url}: schema already at {after}")
    else:
        typer.echo(f"{store.display_url}: schema {before or 'empty'} -> {after}")


@app.command("current")
def db_current(home: HomeOption = None) -> None:
    """Print the schema version of the metadata store and the one this loopml needs."""
    from loopml.store import Store, migrate
    from loopml.store.engine import get_engine
    from loopml.workspace import Workspace

    store = Store(Workspace.from_env(home).store_uri)
    with get_engine(store.url).connect() as conn:
        revision = migrate.current_revision(conn)
    typer.echo(f"{store.display_url}: schema {revision or 'empty'} (this loopml: {migrate.HEAD})")
