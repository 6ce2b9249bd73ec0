"""`loopml monitor` and `loopml alerts`: drift, quality and performance over the prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, console, print_json, sub_app

if TYPE_CHECKING:
    from loopml.config import ProjectConfig
    from loopml.monitor.settings import MonitorSection

alerts_app = sub_app("Alerts the monitor raised (drift, quality, performance).")


def _settings(config: Path | None) -> tuple[MonitorSection, ProjectConfig | None]:
    """Return the monitor settings and the project file, if there is one."""
    from loopml.config import load_config
    from loopml.monitor.settings import MonitorSection

    project = load_config(config)  # None when no ./loopml.yaml and no --config
    return (MonitorSection() if project is None else project.monitor), project


def monitor(
    ref: Annotated[str | None, typer.Argument(
        help="The model: NAME or NAME@ALIAS (default: the project's model).")] = None,
    window: Annotated[str | None, typer.Option(
        help="Window size: 30m, 6h, 1d … or a row count such as 10000rows "
             "(default: monitor.window, 1d).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Report windows from this time on: an ISO date/time or a duration (7d).")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep watching: a pass every --interval seconds until Ctrl-C.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between passes with --follow.")
                        ] = 60.0,
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="After the pass, run the retraining policy (loopml retrain).")
    ] = False,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Forget this monitor's windows and cursor and read the log again.")
    ] = False,
    log_dir: Annotated[Path | None, typer.Option(
        "--log-dir", help="The prediction log (default: monitor.log_dir, else "
                          "<workspace>/predictions).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the HTML and JSON report.")
                   ] = Path("reports"),
    settle: Annotated[float, typer.Option(
        help="Leave segments younger than this many seconds for the next pass.")] = 5.0,
    config: Annotated[Path | None, typer.Option("--config", help="Project file.")] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Compare the prediction log, window by window, with what each model version was trained on.

    Each pass reads only what arrived since the last one (the cursor is in the store),
    raises alerts once per window and writes a self-contained HTML report with plots, and its
    JSON, into --out.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.errors import InvalidInput
    from loopml.monitor.service import default_log_dir, monitor_once, parse_since
    from loopml.monitor.service import follow as follow_passes
    from loopml.registry.registry import Registry
    from loopml.views import monitor as views
    from loopml.views.text import line
    from loopml.workspace import Workspace

    settings, project = _settings(config)
    if retrain and project is None:
        raise InvalidInput("--retrain needs the project file (its search, gates and retrain: "
                           "policy): run in its folder or give --config")
    target = ref or (project.models.name or project.project.name if project else None)
    if target is None:
        raise InvalidInput("which model? give NAME or NAME@ALIAS (or run in a folder with a "
                           "loopml.yaml)")
    moment = parse_since(since)
    workspace = Workspace.from_env(home)
    folder = str(log_dir) if log_dir else default_log_dir(workspace, settings)
    screen = console()

    def show(outcome: object) -> None:
        from loopml.monitor.service import MonitorOutcome

        assert isinstance(outcome, MonitorOutcome)
        if as_json:
            if not retrain:  # with --retrain, one JSON document holds both
                typer.echo(views.report_json(outcome.report))  # strict, no PII values
            return
        result = outcome.result
        screen.print(line("read ", (f"{result.rows:,}", "bold"), f" new rows from "
                          f"{result.segments} segments (", str(result.feedback_segments),
                          " feedback) of ", folder))
        views.print_summary(screen, outcome.report)
        for alert in result.new_alerts:
            screen.print(line(("new alert ", "bold red"), f"#{alert.id} {alert.kind}: ",
                              alert.message))
        if outcome.html is not None:
            screen.print(line("report: ", (str(outcome.html), "bold"), " (and ",
                              str(outcome.json), ")"))

    bar = Progress(TextColumn("reading the prediction log", markup=False), BarColumn(),
                   TextColumn("{task.completed}/{task.total} segments, {task.fields[rows]:,} rows"),
                   TimeElapsedColumn(), console=screen, transient=True,
                   disable=as_json or not screen.is_terminal)
    with Registry.open(workspace) as registry, bar as progress:
        task = progress.add_task("monitor", total=None, rows=0)

        def advance(done: int, total: int, rows: int) -> None:
            progress.update(task, completed=done, total=total, rows=rows)

        options = dict(settings=settings, log_dir=folder, window=window, since=moment,
                       report_dir=out, settle_seconds=settle, progress=advance)
        if follow:
            try:
                follow_passes(registry, target, interval=interval, on_pass=show,
                              rebuild=rebuild, **options)
            except KeyboardInterrupt:
                screen.print("stopped; the next pass carries on from the stored cursor")
                raise typer.Exit(0) from None
            return
        outcome = monitor_once(registry, target, rebuild=rebuild, **options)
    show(outcome)
    if retrain:
        from loopml.monitor.retrain import retrain_model
        from loopml.views import retrain as retrain_views

        assert project is not None
        done = retrain_model(workspace, project, model=target.partition("@")[0],
                             log_dir=folder, console=None if as_json else screen)
        if as_json:
            import json

            print_json({"monitor": json.loads(views.report_json(outcome.report)),
                        "retrain": done.to_json()})
        else:
            retrain_views.print_outcome(screen, done)
        if done.status in ("refused", "blocked"):
            raise typer.Exit(1)


@alerts_app.command("list")
def list_alerts(
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    kind: Annotated[list[str] | None, typer.Option(
        help="Only alerts of this kind (repeatable): drift, prediction_drift, quality, "
             "performance, performance_estimated.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only alerts raised since: an ISO date/time or a duration (7d).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """List the alerts the monitor raised, newest first."""
    from loopml.cli.common import tracking_client
    from loopml.monitor.service import parse_since
    from loopml.views import monitor as views

    client = tracking_client(home, create=False)
    try:
        found = client.store.monitoring.alerts(model=model, since=parse_since(since), kinds=kind,
                                               limit=limit)
    finally:
        client.close()
    if as_json:
        print_json(views.alerts_json(found))
        return
    console().print(views.alerts_table(found))
