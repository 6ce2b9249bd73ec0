"""`loopml predict`: score a CSV or Parquet file with a registered model, locally or on Ray."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from loopml.cli.common import HomeOption, console, whole_number


def _one_of(*choices: str) -> Callable[[str], str]:
    """Return a parser that takes one of ``choices``; anything else is a one-line error."""

    def parse(text: str) -> str:
        if text not in choices:
            raise typer.BadParameter(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def predict(
    ref: Annotated[str, typer.Argument(help="The model: NAME@ALIAS, NAME@VERSION or NAME.")],
    source: Annotated[Path, typer.Argument(
        help="Rows to score: a .csv, .csv.gz, .parquet or .pq file.", show_default=False)],
    output: Annotated[Path, typer.Argument(
        help="Where the scored rows go; its suffix picks CSV or Parquet.", show_default=False)],
    backend: Annotated[str, typer.Option(
        parser=_one_of("local", "ray"),
        help="local: this process; ray: Ray Data on the cluster of RAY_ADDRESS, else a local "
             "Ray.")] = "local",
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", parser=whole_number(1, 100_000_000),
        help="Rows scored at a time: memory follows it.")] = 50_000,
    flavour: Annotated[str | None, typer.Option(
        parser=_one_of("native", "onnx"),
        help="Which of the version's models scores (default: the one it serves with).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")
                     ] = False,
    home: HomeOption = None,
) -> None:
    """Score every row of SOURCE with a registered model and write them, predicted, to OUTPUT.

    OUTPUT holds SOURCE's columns, `prediction` and, for classifiers, one `probability_<label>`
    column per class. It appears only once complete: Ctrl-C or an error leaves no file.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.registry.registry import Registry
    from loopml.serve.batch import check_paths, score_file
    from loopml.views.text import line
    from loopml.workspace import Workspace

    check_paths(source, output, overwrite=force)  # before the model loads: fail fast
    if backend == "ray":
        _quiet_ray()
    with Registry.open(Workspace.from_env(home)) as registry:
        record = registry.get(ref)
        model = registry.load(record, flavour=flavour or record.flavour)
    out = console()
    with Progress(TextColumn(f"scoring with {record.ref}", markup=False), BarColumn(),
                  TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
                  console=out, transient=True, disable=not out.is_terminal) as progress:
        task = progress.add_task("score", total=None, rows=0)

        def advance(rows: int, total: int | None) -> None:
            progress.update(task, completed=rows, total=total, rows=rows)

        summary = score_file(model, source, output, chunk_rows=chunk_rows, backend=backend,
                             overwrite=force, on_progress=advance)
    out.print(line("scored ", (f"{summary.rows:,}", "bold"), " rows with ", record.ref,
                   " into ", (str(summary.output), "bold"),
                   f" ({summary.rows_per_second:,.0f} rows/s)"))


def _quiet_ray() -> None:
    """Keep Ray's notices and failure tracebacks off the terminal: loopml says it in one line."""
    import logging

    try:
        import ray.data  # noqa: F401 - Ray Data sets its loggers up on import: quiet them after
    except ImportError:
        return  # score_file says how to install it
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
