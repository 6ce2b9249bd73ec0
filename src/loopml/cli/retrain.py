"""`loopml retrain`: the retraining policy of loopml.yaml, run once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli.common import HomeOption, JsonOption, console, print_json


def retrain(
    ref: Annotated[str | None, typer.Argument(
        metavar="NAME", help="The model name (default: models.name, else the project's name).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Retrain without an alert (the minimum of new labelled rows still "
                        "holds).")] = False,
    config: Annotated[Path, typer.Option("--config", help="Project file (search, gates, "
                                                          "retrain: policy).")
                      ] = Path("loopml.yaml"),
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Retrain on labelled production rows after an alert; promote only if every gate passes.

    Exit code 0 when the challenger was promoted or there was nothing to do yet (no alert,
    too few new labelled rows: the message gives the counts); 1 when a gate refused the
    challenger or could not pass on production rows (the champion stays); 2 on bad input.
    """
    from loopml.config import load_config
    from loopml.errors import InvalidInput
    from loopml.monitor.retrain import retrain_model
    from loopml.views import retrain as views
    from loopml.workspace import Workspace

    settings = load_config(config)  # an explicit path: a missing file is an error
    assert settings is not None
    name, _, alias = (ref or "").partition("@")
    if alias and alias != settings.retrain.promote_to:
        raise InvalidInput(f"retrain moves {settings.retrain.promote_to!r} "
                           f"(retrain.promote_to), not {alias!r}: give the model NAME")
    screen = None if as_json else console()
    outcome = retrain_model(Workspace.from_env(home), settings, model=name or None, force=force,
                            console=screen)
    if as_json:
        print_json(outcome.to_json())
    else:
        assert screen is not None
        views.print_outcome(screen, outcome)
    if outcome.status in ("refused", "blocked"):
        raise typer.Exit(1)
