"""Whether the process that started a run is still alive on this host.

A run records the host name and pid of the process that created it. A process killed
with SIGKILL (or by the OOM killer, or a power cut) cannot end its run, so the run would
stay RUNNING forever; listings ask this module and mark such runs KILLED.

Host name and pid identify a process only within one PID namespace: no boot or namespace
id is recorded, so processes in a container that shares the host name but not the PID
namespace cannot be told apart from dead ones here (see ``Runs.mark_gone``).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

# A pid's process that started this long after the run did is not the run's process
# (the pid was reused); the slack covers clock rounding between /proc and the store.
_START_SLACK_S = 2.0


def this_host() -> str:
    return socket.gethostname()


def process_gone(pid: int | None, started: datetime | None = None) -> bool:
    """Return True when ``pid`` is certainly not the live process that started at ``started``.

    Unknown is alive: a pid we may not signal (another user's) counts as alive, and so does
    a pid whose start time cannot be read.

    >>> process_gone(os.getpid())
    False
    """
    return gone_given(process_state(pid), started)


def process_state(pid: int | None) -> tuple[bool, float | None]:
    """Return (whether ``pid`` is dead or a zombie, the Unix time it started if known)."""
    if pid is None or pid <= 0:
        return False, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True, None
    except (PermissionError, OSError):
        return False, None
    fields = _proc_stat(pid)
    if fields is not None and fields[0] == "Z":
        return True, None  # killed, waiting for its parent to reap it: it will never write
    return False, _process_start(fields)


def gone_given(state: tuple[bool, float | None], started: datetime | None) -> bool:
    """Decide from :func:`process_state` whether a run started at ``started`` lost its process."""
    dead, begun = state
    if dead:
        return True
    # The pid now belongs to a process younger than the run: the pid was reused.
    return started is not None and begun is not None and \
        begun > started.timestamp() + _START_SLACK_S


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2:].split()


def _process_start(fields: list[str] | None) -> float | None:
    """Return the Unix time a process started (Linux /proc), or None if unknown."""
    if fields is None:
        return None
    try:
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def _boot_time() -> int:
    with open("/proc/stat", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("btime "))
