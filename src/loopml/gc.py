"""Clean what crashes leave behind: unreferenced artifact objects, temp files, temp folders.

A process killed mid-write (SIGKILL, OOM, power cut) cannot clean up after itself: an
ingest leaves its ``loopml-ingest-*`` temp folder, an artifact write its ``tmp/*.part``
file, and bytes stored just before the record was written (or left when their run was
deleted) stay as objects no record points at. :func:`collect` finds them and, with
``delete=True``, removes them, never touching anything a live process may be using:

- an object any record points at (every ``*sha256`` column of the store) is kept;
- anything changed more recently than ``older_than_s`` is kept (a write in progress);
- a ``.part`` file whose writer still holds its lock (flock, released at death) is kept;
- a temp folder a live process has a file open in (or works in) is kept.

>>> parse_age("90m")
5400.0
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store

DEFAULT_OLDER_THAN_S = 3600.0
# The temp folders loopml's own commands make (tempfile.TemporaryDirectory prefixes).
TEMP_PREFIXES = ("loopml-ingest-", "loopml-load-", "loopml-validate-", "loopml-search-")
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

Kind = Literal["object", "temp file", "temp folder"]


@dataclass(frozen=True)
class Leftover:
    """One thing gc removes (or would remove, in a dry run)."""

    kind: Kind
    path: Path
    size: int
    age_s: float


@dataclass
class GcReport:
    """What :func:`collect` found, what it spared and why, and whether it deleted."""

    leftovers: list[Leftover] = field(default_factory=list)
    in_use: list[Path] = field(default_factory=list)
    too_young: int = 0
    deleted: bool = False

    @property
    def size(self) -> int:
        return sum(item.size for item in self.leftovers)

    def count(self, kind: Kind) -> int:
        return sum(item.kind == kind for item in self.leftovers)


def parse_age(text: str) -> float:
    """Return seconds for an age like ``90``, ``90s``, ``30m``, ``1h`` or ``2d``.

    >>> parse_age("1h"), parse_age("0")
    (3600.0, 0.0)
    """
    match = _AGE.fullmatch(str(text))
    if not match:
        raise InvalidInput(f"--older-than {text!r} is not an age: give a number of seconds or "
                           "one with a unit, like 90s, 30m, 1h or 2d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def collect(
    store: Store,
    artifacts: ArtifactStore,
    *,
    older_than_s: float = DEFAULT_OLDER_THAN_S,
    temp_dir: str | os.PathLike[str] | None = None,
    delete: bool = False,
    now: float | None = None,
) -> GcReport:
    """Find leftovers older than ``older_than_s``; with ``delete``, remove them.

    ``temp_dir`` is where temp folders are looked for (default: the system's, as
    :mod:`tempfile` picks it). Every deletion re-checks its reason just before it happens.
    """
    from loopml.artifacts.gc import is_locked, stored_objects, temp_files
    from loopml.store.artifact_index import referenced_addresses

    if not older_than_s >= 0:
        raise InvalidInput(f"the age threshold must be 0 or more seconds, got {older_than_s}")
    now = time.time() if now is None else now
    report = GcReport()
    objects = []

    referenced = referenced_addresses(store)
    for item in stored_objects(artifacts):
        if item.sha256 in referenced:
            continue
        if now - item.mtime < older_than_s:
            report.too_young += 1
        else:
            objects.append(item)
            report.leftovers.append(Leftover("object", item.path, item.size, now - item.mtime))

    for item in temp_files(artifacts):
        if is_locked(item.path):
            report.in_use.append(item.path)
        elif now - item.mtime < older_than_s:
            report.too_young += 1
        else:
            report.leftovers.append(Leftover("temp file", item.path, item.size,
                                             now - item.mtime))

    in_use = _paths_in_use()
    for folder in _temp_folders(Path(temp_dir or tempfile.gettempdir())):
        size, newest = _tree_size_and_newest(folder)
        if _folder_in_use(folder, in_use):
            report.in_use.append(folder)
        elif now - newest < older_than_s:
            report.too_young += 1
        else:
            report.leftovers.append(Leftover("temp folder", folder, size, now - newest))

    if delete:
        _delete(report, store, older_than_s=older_than_s)
    return report


def _delete(report: GcReport, store: Store, *, older_than_s: float) -> None:
    from loopml.artifacts.gc import is_locked, remove
    from loopml.store.artifact_index import referenced_addresses

    # Read the references again after listing: a record written meanwhile saves its bytes.
    referenced = referenced_addresses(store)
    in_use = _paths_in_use()
    removed = []
    for item in report.leftovers:
        if item.kind == "object":
            address = item.path.parent.name + item.path.name
            if address in referenced or _younger(item.path, older_than_s):
                continue  # a writer found these bytes stored and touched them
            if remove(item.path):
                removed.append(item)
        elif item.kind == "temp file":
            if not is_locked(item.path) and remove(item.path):
                removed.append(item)
        elif not _folder_in_use(item.path, in_use):
            shutil.rmtree(item.path, ignore_errors=True)
            removed.append(item)
    report.leftovers = removed
    report.deleted = True


def _younger(path: Path, older_than_s: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < older_than_s
    except FileNotFoundError:
        return True  # gone already: nothing to do


def _temp_folders(temp_dir: Path) -> Iterator[Path]:
    """Yield this user's loopml temp folders in ``temp_dir`` (links are never followed)."""
    try:
        entries = sorted(temp_dir.iterdir())
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for path in entries:
        if not path.name.startswith(TEMP_PREFIXES) or path.is_symlink() or not path.is_dir():
            continue
        if uid is not None and path.stat().st_uid != uid:
            continue
        yield path


def _tree_size_and_newest(folder: Path) -> tuple[int, float]:
    """Return the bytes under ``folder`` and the newest change time of anything in it."""
    size, newest = 0, folder.lstat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            newest = max(newest, info.st_mtime)
            if name in files:
                size += info.st_size
    return size, newest


def _paths_in_use() -> set[str] | None:
    """Return the files open in, and working folders of, this user's processes (Linux).

    None where ``/proc`` cannot be read: then the age threshold alone protects live work.
    """
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    paths: set[str] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            paths.add(os.readlink(entry / "cwd"))
            for fd in (entry / "fd").iterdir():
                try:
                    paths.add(os.readlink(fd))
                except OSError:
                    continue
        except OSError:
            continue  # another user's process, or it just ended
    return paths


def _folder_in_use(folder: Path, in_use: set[str] | None) -> bool:
    if in_use is None:
        return False
    prefix = str(folder.resolve())
    return any(path == prefix or path.startswith(prefix + os.sep) for path in in_use)
