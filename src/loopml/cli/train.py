"""`loopml init` and `loopml train`: write a project file, then train from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli.common import HomeOption, console, fail


def init(
    data_file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines data file.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    sensitive: Annotated[list[str] | None, typer.Option(
        help="A sensitive column for fairness checks (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Project and dataset name "
                                                  "(default: the file's stem).")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the project file.")
                   ] = Path("loopml.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented loopml.yaml inferred from a data file."""
    from loopml.train.init import check_out_path, render_project_file, write_project_file

    check_out_path(out, force=force)  # before reading the data
    text = render_project_file(data_file, target=target, sensitive=sensitive or [], name=name,
                               out=out)
    write_project_file(text, out, force=force)
    typer.echo(f"wrote {out}; next: loopml train --config {out}")


def train(
    config: Annotated[Path, typer.Option("--config", help="Project file.")] = Path("loopml.yaml"),
    home: HomeOption = None,
) -> None:
    """Search, train and evaluate the project's model; write its model card."""
    from loopml.config import load_config
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    settings = load_config(config)
    if settings is None:
        fail(f"{config}: no such project file (write one with `loopml init DATA --target COL`)")
    out = console()
    try:
        train_project(settings, workspace=Workspace.from_env(home), console=out,
                      project_dir=config.resolve().parent)
    except KeyboardInterrupt:
        out.print("[yellow]search interrupted[/]: finished trials are kept in the store "
                  "(loopml runs list --children)")
        raise typer.Exit(130) from None
