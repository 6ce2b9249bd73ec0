"""Diagnostic: ``loopml serve``'s app with the prediction log switched off.

Not a peer: it isolates what the log's writer thread costs the request path (both share the
GIL). Served as ``uvicorn loopml_nolog:app --factory`` with ``LOOPML_SERVE_SETTINGS`` set as
``loopml serve`` sets it.
"""

from __future__ import annotations

from typing import Any


def app() -> Any:
    """Return the app of ``loopml serve`` whose prediction and feedback logs are None."""
    from loopml.serve import app as served

    served._open_logs = lambda settings, workspace: (None, None)
    return served.app_from_env()
