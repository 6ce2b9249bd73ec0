"""The `loopml` command line: Typer commands that call the packages; no logic of its own.

Errors loopml raises on purpose (``loopml.errors``) are printed as one line on stderr with
exit code 2; Ctrl-C exits with 130. Heavy libraries are imported inside the commands, so
``loopml --help`` starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from loopml.errors import LoopmlError

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.tracking import TrackingClient

app = typer.Typer(
    name="loopml",
    help="The whole ML lifecycle in one loop: data, training, registry, serving, monitoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~0.12 s at every start
)
runs_app = typer.Typer(help="Tracked runs: list, show, compare, delete.", no_args_is_help=True,
                       rich_markup_mode=None)
db_app = typer.Typer(help="The metadata store's schema.", no_args_is_help=True,
                     rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="LOOPML_HOME", help="Workspace folder (default ./.loopml).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def main() -> None:
    """Entry point of the `loopml` console script."""
    try:
        app()
    except LoopmlError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    print(f"loopml: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def _console() -> Console:
    from rich.console import Console

    return Console()


def _client(home: Path | None) -> TrackingClient:
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    return TrackingClient.from_workspace(Workspace.from_env(home))


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))


@runs_app.command("list")
def runs_list(
    home: HomeOption = None,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, FINISHED, FAILED or KILLED.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    children: Annotated[bool, typer.Option("--children", help="Include child runs.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first, with their latest metrics."""
    from loopml import views

    client = _client(home)
    records = client.list_runs(project=project, status=status, limit=limit,
                               top_level=not children)
    latest = client.store.metrics.latest([r.id for r in records])
    if as_json:
        _print_json([views.run_json(r, latest.get(r.id, {})) for r in records])
    else:
        _console().print(views.runs_table(records, latest))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: status, params, latest metrics, tags, artifacts, child runs."""
    from loopml import views

    detail = _client(home).run_detail(run_id)
    if as_json:
        _print_json(views.detail_json(detail))
    else:
        views.print_detail(_console(), detail)


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: params and latest metrics, differences highlighted."""
    from loopml import views

    if len(run_ids) < 2:
        _fail("runs compare needs at least two run ids")
    client = _client(home)
    details = [client.run_detail(run_id) for run_id in run_ids]
    if as_json:
        _print_json(views.compare_json(details))
    else:
        _console().print(views.compare_table(details))


@runs_app.command("metric")
def runs_metric(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    key: Annotated[str, typer.Argument(help="Metric name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every logged point of one metric of a run."""
    from loopml import views

    client = _client(home)
    points = client.metric_history(run_id, key)
    if not points:
        _fail(f"run {run_id} has no metric {key!r} (see `loopml runs show {run_id}`)")
    if as_json:
        _print_json([views.point_json(p) for p in points])
    else:
        _console().print(views.history_table(key, points))


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    home: HomeOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run, its child runs and everything logged to them."""
    client = _client(home)
    record = client.get_run(run_id)
    if not yes:
        typer.confirm(f"Delete run {record.id[:12]} ({record.name!r}) and its child runs?",
                      abort=True)
    deleted = client.delete_run(record.id)
    typer.echo(f"deleted {len(deleted)} run(s): {', '.join(d[:12] for d in deleted)}")


@db_app.command("upgrade")
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


@db_app.command("current")
def db_current(home: HomeOption = None) -> None:
    """Print the schema version of the metadata store and the one this loopml needs."""
    from loopml.store import migrate
    from loopml.store.database import Store
    from loopml.store.engine import get_engine
    from loopml.workspace import Workspace

    store = Store(Workspace.from_env(home).store_uri)
    with get_engine(store.url).connect() as conn:
        revision = migrate.current_revision(conn)
    typer.echo(f"{store.display_url}: schema {revision or 'empty'} (this loopml: {migrate.HEAD})")


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Workspace folder to use (default: a new temporary folder)."),
    ] = None,
) -> None:
    """Run the loop on bundled data and show what was recorded."""
    from loopml.demo import run_demo

    run_demo(directory, console=_console())


@app.command()
def version() -> None:
    """Print loopml's version."""
    from loopml import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    main()
