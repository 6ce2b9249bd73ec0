"""`loopml runs`: list, show, compare, inspect and delete tracked runs."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli.common import (
    HomeOption,
    JsonOption,
    console,
    fail,
    print_json,
    sub_app,
    tracking_client,
    whole_number,
)

app = sub_app("Tracked runs: list, show, compare, delete.")
MAX_LIMIT = 1_000_000


@app.command("list")
def runs_list(
    home: HomeOption = None,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, FINISHED, FAILED or KILLED.")] = None,
    limit: Annotated[int, typer.Option(parser=whole_number(1, MAX_LIMIT),
                                       help="At most this many runs.")] = 50,
    children: Annotated[bool, typer.Option("--children", help="Include child runs.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first, with their latest metrics."""
    from loopml.views import runs as views

    client = tracking_client(home, create=False)
    records = client.list_runs(project=project, status=status, limit=limit,
                               top_level=not children)
    latest = client.store.metrics.latest([r.id for r in records])
    if as_json:
        print_json([views.run_json(r, latest.get(r.id, {})) for r in records])
    else:
        console().print(views.runs_table(records, latest))


@app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: status, params, latest metrics, tags, artifacts, child runs."""
    from loopml.views import runs as views

    detail = tracking_client(home, create=False).run_detail(run_id)
    if as_json:
        print_json(views.detail_json(detail))
    else:
        views.print_detail(console(), detail)


@app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: params and latest metrics, differences highlighted."""
    from loopml.views import runs as views

    if len(run_ids) < 2:
        fail("runs compare needs at least two run ids")
    client = tracking_client(home, create=False)
    details = [client.run_detail(run_id) for run_id in run_ids]
    if as_json:
        print_json(views.compare_json(details))
    else:
        console().print(views.compare_table(details))


@app.command("metric")
def runs_metric(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    key: Annotated[str, typer.Argument(help="Metric name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every logged point of one metric of a run."""
    from loopml.views import runs as views

    client = tracking_client(home, create=False)
    points = client.metric_history(run_id, key)
    if not points:
        fail(f"run {run_id} has no metric {key!r} (see `loopml runs show {run_id}`)")
    if as_json:
        print_json([views.point_json(p) for p in points])
    else:
        console().print(views.history_table(key, points))


@app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    home: HomeOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run, its child runs and everything logged to them."""
    client = tracking_client(home, create=False)
    record = client.get_run(run_id)
    if not yes:
        typer.confirm(f"Delete run {record.id[:12]} ({record.name!r}) and its child runs?",
                      abort=True)
    deleted = client.delete_run(record.id)
    typer.echo(f"deleted {len(deleted)} run(s): {', '.join(d[:12] for d in deleted)}")
