"""The Python verbs that mirror the CLI: ``loopml.add_data`` and ``loopml.train``.

They take the same arguments as the commands, return records instead of printing, and
raise :mod:`loopml.errors` exceptions where the CLI would print one line and exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.data import AddResult
    from loopml.train.runner import TrainOutcome
    from loopml.workspace import Workspace


def add_data(source: str | Path | None = None, *, name: str, project: str = "default",
             target: str | None = None, pii: Mapping[str, str] | None = None,
             sql: str | None = None, url: str | None = None, format: str | None = None,
             null_values: Sequence[str] = ("",), encoding: str = "utf8",
             workspace: Workspace | None = None) -> AddResult:
    """Add a file (or a SQL query's rows) as a version of dataset ``name``; return the result.

    The same content is one version: adding it again returns the existing version with
    ``created`` false.

    Examples
    --------
    >>> result = loopml.add_data("credit.csv", name="credit", target="default")  # doctest: +SKIP
    >>> result.version.ref                                                     # doctest: +SKIP
    'credit@1'
    """
    from loopml.data import Catalog, resolve_source
    from loopml.workspace import Workspace

    resolved = resolve_source(str(source) if source is not None else None, sql=sql, url=url,
                              format=format, null_values=tuple(null_values),
                              encoding=encoding)
    catalog = Catalog.from_workspace(workspace or Workspace.from_env())
    return catalog.add(resolved, name=name, project=project, target=target, pii=dict(pii or {}))


def train(config: str | Path = "loopml.yaml", *, workspace: Workspace | None = None,
          console: Console | None = None) -> TrainOutcome:
    """Train the project described by ``config``; return the outcome (run, model, card, version).

    The model is registered as the next version of the project's model (``models.name``).

    Examples
    --------
    >>> outcome = loopml.train("loopml.yaml")                 # doctest: +SKIP
    >>> outcome.model.predict(frame)                          # doctest: +SKIP
    """
    from loopml.config import load_config
    from loopml.train.runner import train_project
    from loopml.workspace import Workspace

    settings = load_config(config)
    return train_project(settings, workspace=workspace or Workspace.from_env(),
                         console=console, project_dir=Path(config).resolve().parent)
