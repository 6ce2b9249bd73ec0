"""Clean what crashes leave behind: unreferenced artifact objects, temp files, temp folders.

A process killed mid-write (SIGKILL, OOM, power cut) cannot clean up after itself: an
ingest leaves its ``loopml-ingest-*`` temp folder, an artifact write its ``tmp/*.part``
file, and bytes stored just before the record was written (or left when their run was
deleted) stay as objects no record points at. :func:`collect` finds them and, with
``delete=True``, removes them, never touching anything a live process may be using:

- an object any record points at (every ``*sha256`` column of the store) is kept;
- anything changed more recently than ``older_than_s`` is kept (a write in progress);
- a ``.part`` file whose writer still holds its lock (flock, released at death) is kept;
- a temp folder whose creating command is alive is kept: the commands name their folders
  ``loopml-<kind>-<pid>-…``, and a pid alive on this host that started before the folder
  was last changed (so not a reused pid) protects it for the command's whole life;
- a temp folder a live process has a file open in (or works in) is kept.

Objects are not unlinked at once: they are first moved to ``trash/`` in the artifact
folder, the references are read again, and an object recorded (or touched by a writer
that found it stored) meanwhile is moved back. A writer that finds its bytes stored
touches them and looks again, storing its own copy if they vanished. One window remains:
a writer that found the object stored, touched it, and then takes longer than
``older_than_s`` to write its record can lose the bytes to a gc that trashes the object
and re-reads the references in that time. The CLI's minimum age (60 s) keeps that window
to a writer stalled for over a minute between storing and recording.

Temp folders are matched to processes by pid on this host: a folder in a temp dir shared
with another PID namespace (a container sharing ``/tmp``) is protected only by its open
files and its age. ``loopml-validate-*`` folders without a pid are protected the same way.

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
# Below this an age is refused by parse_age (the CLI): a command's files that have not
# changed for a few seconds are not abandoned. The variable lowers it, for tests and
# scripts that know no loopml command is running.
MIN_OLDER_THAN_S = 60.0
MIN_AGE_VARIABLE = "LOOPML_GC_MIN_AGE"
# The temp folders loopml's own commands make (tempfile.TemporaryDirectory prefixes); a
# command puts its pid after the prefix: ``loopml-search-<pid>-<random>``.
TEMP_PREFIXES = ("loopml-ingest-", "loopml-load-", "loopml-validate-", "loopml-search-")
_OWNER = re.compile(r"loopml-[a-z]+-(\d+)-")
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


def parse_age(text: str, *, minimum_s: float | None = None) -> float:
    """Return seconds for an age like ``90``, ``90s``, ``30m``, ``1h`` or ``2d``.

    An age under ``minimum_s`` is refused; by default the minimum is 60 s, or the
    seconds in the environment variable ``LOOPML_GC_MIN_AGE`` (``0`` allows any age).

    >>> parse_age("1h"), parse_age("0", minimum_s=0)
    (3600.0, 0.0)
    """
    match = _AGE.fullmatch(str(text))
    if not match:
        raise InvalidInput(f"--older-than {text!r} is not an age: give a number of seconds or "
                           "one with a unit, like 90s, 30m, 1h or 2d")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    minimum = _minimum_age() if minimum_s is None else minimum_s
    if seconds < minimum:
        raise InvalidInput(f"--older-than {text} is under the minimum of {minimum:g} s: "
                           "younger files may belong to a running command; give "
                           f"{minimum:g}s or more, or set {MIN_AGE_VARIABLE}=0 when no loopml "
                           "command is running")
    return seconds


def _minimum_age() -> float:
    text = os.environ.get(MIN_AGE_VARIABLE)
    if text is None:
        return MIN_OLDER_THAN_S
    match = _AGE.fullmatch(text)
    if not match:
        raise InvalidInput(f"{MIN_AGE_VARIABLE}={text!r} is not an age: give a number of "
                           "seconds, like 0 or 60")
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
    Unlike :func:`parse_age`, any age of 0 or more is accepted here: a caller passing a
    small one vouches that no loopml command is writing objects.
    """
    from loopml.artifacts.gc import (
        is_locked,
        restore,
        stored_objects,
        temp_files,
        trashed_objects,
    )
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
    # Left in the trash by a gc that died before deleting: a recorded one goes back.
    for item in trashed_objects(artifacts):
        if item.sha256 not in referenced:
            report.leftovers.append(Leftover("object", item.path, item.size, now - item.mtime))
        elif delete:
            restore(item.path, artifacts)

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
        if _owner_alive(folder) or _folder_in_use(folder, in_use):
            report.in_use.append(folder)
        elif now - newest < older_than_s:
            report.too_young += 1
        else:
            report.leftovers.append(Leftover("temp folder", folder, size, now - newest))

    if delete:
        _delete(report, store, artifacts, older_than_s=older_than_s)
    return report


def _delete(report: GcReport, store: Store, artifacts: ArtifactStore, *,
            older_than_s: float) -> None:
    from loopml.artifacts.gc import address_of, is_locked, remove, restore, to_trash
    from loopml.store.artifact_index import referenced_addresses

    # Read the references again after listing: a record written meanwhile saves its bytes.
    referenced = referenced_addresses(store)
    in_use = _paths_in_use()
    removed = []
    trashed = []
    for item in report.leftovers:
        if item.kind == "object":
            if address_of(item.path) in referenced or _younger(item.path, older_than_s):
                continue  # a writer found these bytes stored and touched them
            moved = to_trash(item.path, artifacts)
            if moved is not None:
                trashed.append((item, moved))
        elif item.kind == "temp file":
            if not is_locked(item.path) and remove(item.path):
                removed.append(item)
        elif not _owner_alive(item.path) and not _folder_in_use(item.path, in_use):
            shutil.rmtree(item.path, ignore_errors=True)
            removed.append(item)
    # Trashed objects can no longer be found by a writer (it stores its own copy); one
    # that found them before the move touched them, or recorded them: look once more.
    referenced = referenced_addresses(store) if trashed else referenced
    for item, moved in trashed:
        if address_of(moved) in referenced or _younger(moved, older_than_s):
            restore(moved, artifacts)
        elif remove(moved):
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


def _owner_alive(folder: Path) -> bool:
    """Return whether the command that made ``folder`` (pid in its name) still runs here.

    >>> _owner_alive(Path("loopml-search-abc"))
    False
    """
    from datetime import UTC, datetime

    from loopml.store.processes import gone_given, process_state

    match = _OWNER.match(folder.name)
    if match is None:
        return False
    try:
        # The maker started before it made the folder, so before the folder last changed;
        # a pid whose process started later was reused.
        changed = datetime.fromtimestamp(folder.lstat().st_ctime, tz=UTC)
    except FileNotFoundError:
        return False
    pid = int(match.group(1))
    return pid == os.getpid() or not gone_given(process_state(pid), changed)


def _folder_in_use(folder: Path, in_use: set[str] | None) -> bool:
    if in_use is None:
        return False
    prefix = str(folder.resolve())
    return any(path == prefix or path.startswith(prefix + os.sep) for path in in_use)
