"""The `loopml` command line: Typer commands that call the packages; no logic of their own.

Errors loopml raises on purpose (``loopml.errors``) are printed as one line on stderr with
exit code 2; Ctrl-C exits with 130. Heavy libraries are imported inside the commands, so
``loopml --help`` starts fast. One module per command group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import data, db, runs, train
from loopml.cli.common import console, fail
from loopml.errors import LoopmlError

app = typer.Typer(
    name="loopml",
    help="The whole ML lifecycle in one loop: data, training, registry, serving, monitoring.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich's help renderer costs ~0.12 s at every start
)
app.add_typer(data.app, name="data")
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.command("init")(train.init)
app.command("train")(train.train)


def main() -> None:
    """Entry point of the `loopml` console script."""
    try:
        app()
    except LoopmlError as exc:
        fail(str(exc))


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Workspace folder to use (default: a new temporary folder)."),
    ] = None,
) -> None:
    """Run the loop on bundled data and show what was recorded."""
    from loopml.demo import run_demo

    run_demo(directory, console=console())


@app.command()
def version() -> None:
    """Print loopml's version."""
    from loopml import __version__

    typer.echo(__version__)
