"""The `loopml` command line: Typer commands that call the packages; no logic of their own.

Errors loopml raises on purpose (``loopml.errors``) and command-line mistakes are printed as
one line on stderr with exit code 2; Ctrl-C exits with 130; any other exception is a bug,
printed as one line with exit code 1 (``LOOPML_DEBUG=1`` shows the traceback). Heavy
libraries are imported inside the commands, so ``loopml --help`` starts fast. One module per
command group.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import (
    data,
    db,
    gc,
    models,
    monitor,
    predict,
    retrain,
    runs,
    serve,
    tokens,
    train,
)
from loopml.cli.common import (
    console,
    debug_traceback,
    fail,
    internal_error,
    interrupted,
    is_interrupt,
    usage_error,
)
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
app.add_typer(models.app, name="models")
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="tokens")
app.add_typer(monitor.alerts_app, name="alerts")
app.command("init")(train.init)
app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("gc")(gc.gc)
app.command("predict")(predict.predict)
app.command("monitor")(monitor.monitor)
app.command("retrain")(retrain.retrain)


def main() -> None:
    """Entry point of the `loopml` console script; the one place that picks exit codes.

    0 done; 1 a check failed, or a bug in loopml (one line, ``LOOPML_DEBUG=1`` adds the
    traceback); 2 bad input (one line); 130 interrupted (Ctrl-C).
    """
    try:
        code = app(prog_name="loopml", standalone_mode=False)
    except LoopmlError as exc:
        debug_traceback(exc)
        if is_interrupt(exc):
            interrupted()
        fail(str(exc))
    except typer.TyperException as exc:
        usage_error(exc)
    except typer.Abort:  # a confirmation answered "no", or end of input at a prompt
        print("loopml: aborted", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:
        debug_traceback(exc)
        if is_interrupt(exc):
            interrupted()
        internal_error(exc)
    if code == 130:  # Typer turns Ctrl-C inside a command into exit code 130, silently
        interrupted()
    raise SystemExit(code if isinstance(code, int) else 0)


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
