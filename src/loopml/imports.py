"""Heavy imports that must survive a Ctrl-C."""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from types import ModuleType


def import_uninterrupted(name: str) -> ModuleType:
    """Return module ``name``, imported with SIGINT held back until the import is done.

    A KeyboardInterrupt raised inside a native module's initialisation can abort the whole
    process (DuckDB's bindings do: "Critical nanobind error"). Held, the Ctrl-C arrives right
    after the import and ends the command cleanly.

    >>> import_uninterrupted("json").__name__
    'json'
    """
    if name in sys.modules:
        return sys.modules[name]
    if threading.current_thread() is not threading.main_thread():
        return importlib.import_module(name)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return importlib.import_module(name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
