"""What every command shares: options, the one-line error, output helpers."""

from __future__ import annotations

import json
import sys
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


def sub_app(help_text: str) -> typer.Typer:
    """Return a command group; plain help, since rich's help renderer slows every start."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with code 2 (bad input)."""
    print(f"loopml: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def console() -> Console:
    from rich.console import Console

    return Console()


def tracking_client(home: Path | None) -> TrackingClient:
    from loopml.tracking import TrackingClient
    from loopml.workspace import Workspace

    return TrackingClient.from_workspace(Workspace.from_env(home))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=False))
