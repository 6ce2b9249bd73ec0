"""Run the real `loopml` command in a fresh process, the way a user's shell does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_loopml(*args: str, home: Path | None = None, env: dict[str, str] | None = None,
               cwd: Path | None = None, stdin: str | None = None, timeout: float = 300
               ) -> subprocess.CompletedProcess:
    """Run ``python -m loopml ARGS``: no LOOPML_* setting leaks in, and a wide terminal."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    if home is not None:
        full_env["LOOPML_HOME"] = str(home)
    full_env.update(env or {})
    full_env["COLUMNS"] = "250"
    return subprocess.run([sys.executable, "-m", "loopml", *args], env=full_env, cwd=cwd,
                          text=True, capture_output=True, timeout=timeout, input=stdin)
