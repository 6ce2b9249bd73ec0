"""What every command shares: options, the one-line error, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.tracking import TrackingClient

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="LOOPML_HOME", help="Workspace folder (default ./.loopml).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """Return a parser for an option that takes a whole number from ``low`` to ``high``.

    Use it as ``typer.Option(parser=whole_number(1, 100))``; anything else is a one-line
    error naming the option and the range.
    """

    def parse(text: str | int) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise typer.BadParameter(f"{text!r} is not allowed: expected a whole number from "
                                     f"{low:,} to {high:,}")
        return value

    return parse


def sub_app(help_text: str) -> typer.Typer:
    """Return a command group; plain help, since rich's help renderer slows every start."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def one_line(message: str, *, limit: int = 1000) -> str:
    r"""Return ``message`` on one line, terminal control characters escaped, cut at ``limit``.

    >>> one_line("bad\n  value \x1b[2J")
    'bad value \\x1b[2J'
    """
    from loopml.views.text import clean

    text = clean(" ".join(message.split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with code 2 (bad input)."""
    print(f"loopml: error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(2)


def usage_error(exc: typer.TyperException) -> NoReturn:
    """Print a mistake on the command line (bad option value, unknown option) as one line."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message()
    if ctx is not None and message == ctx.get_help():
        # A command group run without a command (`loopml runs`): its help, as click prints it.
        print(message, file=sys.stderr)
        raise SystemExit(2)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    print(f"loopml: error: {one_line(message)}{hint}", file=sys.stderr)
    raise SystemExit(exc.exit_code)


def interrupted() -> NoReturn:
    """Print one line and exit with code 130, the shell's code for Ctrl-C."""
    print("loopml: interrupted", file=sys.stderr)
    raise SystemExit(130)


def internal_error(exc: BaseException) -> NoReturn:
    """Print one line about an error loopml did not expect (a bug) and exit with code 1."""
    print(f"loopml: internal error: {type(exc).__name__}: {one_line(str(exc), limit=300)} — "
          "please report; details: LOOPML_DEBUG=1", file=sys.stderr)
    raise SystemExit(1)


def debug_traceback(exc: BaseException) -> None:
    """Print ``exc``'s traceback on stderr when ``LOOPML_DEBUG`` is set (not empty, not 0)."""
    import os

    if os.environ.get("LOOPML_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc)


def is_interrupt(exc: BaseException | None) -> bool:
    """Return whether ``exc`` (or an error it came from) is Ctrl-C.

    DuckDB turns SIGINT during a query into ``RuntimeError("Query interrupted")`` or its
    ``InterruptException`` instead of KeyboardInterrupt; both mean the user stopped the command.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return True
        if isinstance(exc, RuntimeError) and str(exc) == "Query interrupted":
            return True
        duckdb = sys.modules.get("duckdb")
        if duckdb is not None and isinstance(exc, duckdb.InterruptException):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def console() -> Console:
    from rich.console import Console

    return Console()


def tracking_client(home: Path | None, *, create: bool = True) -> TrackingClient:
    """Return a client of the workspace; read commands pass ``create=False``.

    Without ``create`` a missing workspace is an error ("no workspace at …") and nothing
    is made, so a mistyped ``--home`` leaves no empty database behind.
    """
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    return TrackingClient.from_workspace(Workspace.from_env(home), create=create)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))
