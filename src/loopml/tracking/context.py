"""The convenience layer: ``loopml.start_run`` with an active run kept in a contextvar.

This is a thin layer over :class:`TrackingClient`; nothing here holds state that the
explicit client does not. The default client is built once per workspace and process.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from loopml.tracking.client import TrackingClient

if TYPE_CHECKING:
    from loopml.tracking.run import ActiveRun
    from loopml.workspace import Workspace

_active_run: contextvars.ContextVar[ActiveRun | None] = contextvars.ContextVar(
    "loopml_active_run", default=None
)
_clients: dict[Workspace, TrackingClient] = {}
_clients_lock = threading.Lock()


def default_client(workspace: Workspace | None = None) -> TrackingClient:
    """Return this process's client for ``workspace`` (default: from LOOPML_* variables)."""
    from loopml.workspace import Workspace

    workspace = workspace or Workspace.from_env()
    with _clients_lock:
        client = _clients.get(workspace)
        if client is None:
            client = TrackingClient.from_workspace(workspace)
            _clients[workspace] = client
        return client


def active_run() -> ActiveRun | None:
    """Return the run of the innermost ``with start_run(...)`` block, if any."""
    return _active_run.get()


def start_run(
    name: str,
    *,
    project: str | None = None,
    parent: str | ActiveRun | None = None,
    tags: Mapping[str, object] | None = None,
    client: TrackingClient | None = None,
) -> ActiveRun:
    """Start a run; inside another run's block it becomes that run's child.

    The project defaults to the parent's, then ``LOOPML_PROJECT``, then ``"default"``.

    Examples
    --------
    >>> import loopml
    >>> with loopml.start_run("baseline", project="credit") as run:   # doctest: +SKIP
    ...     run.log_params({"C": 1.0})
    ...     for step in range(100):
    ...         run.log_metric("loss", 1 / (step + 1))
    """
    outer = _active_run.get()
    if parent is None and outer is not None and not outer.ended:
        parent = outer
    if project is None:
        if parent is None:
            project = os.environ.get("LOOPML_PROJECT", "default")
        elif not isinstance(parent, str):
            project = parent.record.project
        # a parent given by id: the store looks up its project
    if client is None:
        client = outer._client if outer is not None else default_client()
    return client.start_run(name, project=project, parent=parent, tags=tags)


def _forget_clients_in_child() -> None:
    _clients.clear()


os.register_at_fork(after_in_child=_forget_clients_in_child)


@atexit.register
def _end_open_runs_at_exit() -> None:
    # A script that exits with a run still open: an uncaught exception (recorded by the
    # interpreter in sys.last_value before atexit runs) fails it, otherwise it finished.
    error = getattr(sys, "last_value", None)
    for client in list(_clients.values()):
        for run in client.open_runs():
            try:
                if error is None:
                    run.end("FINISHED")
                elif isinstance(error, KeyboardInterrupt):
                    run.end("KILLED", error="interrupted (KeyboardInterrupt)")
                else:
                    run.end("FAILED", error=f"{type(error).__name__}: {error}")
            except Exception:  # noqa: BLE001 - nothing can be reported at interpreter exit
                pass
