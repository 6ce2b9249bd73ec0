"""Putting a finished file in place: whole or not at all, never over someone else's file."""

from __future__ import annotations

import os
from pathlib import Path

from loopml.errors import AlreadyExists


def publish(temp: Path, target: Path, *, overwrite: bool, what: str = "file") -> None:
    """Move the finished ``temp`` to ``target`` (same folder); refuse to replace a file unless
    ``overwrite``, even one that appeared after the caller's own check.
    """
    if overwrite:
        os.replace(temp, target)
        return
    try:
        # A hard link fails if the name exists, so a file written by someone else since the
        # caller's check is never replaced.
        os.link(temp, target)
    except FileExistsError:
        raise AlreadyExists(f"{what} {str(target)!r} already exists; choose another path or "
                            "pass --force (overwrite=True) to replace it") from None
    except OSError:  # filesystems without hard links: the caller's check is the guard
        os.replace(temp, target)
