"""Diagnostic: ``loopml serve``'s app with the prediction log switched off.

Not a peer: it isolates what the log's writer thread costs the request path (both share the
GIL). Served as ``uvicorn loopml_nolog:app --factory`` with ``LOOPML_SERVE_SETTINGS`` set as
``loopml serve`` sets it. Two more knobs for the tail-latency diagnosis, read from the
environment: ``BENCH_SWITCH_INTERVAL`` (seconds, ``sys.setswitchinterval``: how long the model
thread may wait for the GIL after onnxruntime returns) and ``BENCH_GC_FREEZE=1``
(``gc.freeze()`` once loaded, so collections stop walking the model and libraries).
"""

from __future__ import annotations

from typing import Any


def app() -> Any:
    """Return the app of ``loopml serve`` whose prediction and feedback logs are None."""
    import gc
    import os
    import sys

    from loopml.serve import app as served

    served._open_logs = lambda settings, workspace: (None, None)
    if os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    built = served.app_from_env()
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.collect()
        gc.freeze()
    return built
