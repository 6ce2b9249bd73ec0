"""What the artifact folder holds on disk, for `loopml gc`: stored objects and temp files.

Objects gc means to delete go first to ``trash/<address>`` (a rename, on the same disk),
so that one recorded meanwhile can be put back; readers look there too.

Only a local folder can be swept: an object store has no cheap listing with dates here,
and its temp objects have no lock to tell a live write from a dead one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from loopml.artifacts.backends import LocalBackend, is_locked
from loopml.artifacts.store import ArtifactStore
from loopml.errors import InvalidInput

__all__ = ["OnDisk", "address_of", "is_locked", "restore", "stored_objects", "temp_files",
           "to_trash", "trashed_objects"]

TRASH = "trash"


class OnDisk(NamedTuple):
    """A file of the artifact folder: its path, size and last change (Unix time)."""

    path: Path
    size: int
    mtime: float
    sha256: str | None = None  # the address, for a stored object


def _local_root(artifacts: ArtifactStore) -> Path:
    backend = artifacts._backend
    if not isinstance(backend, LocalBackend):
        raise InvalidInput(
            f"gc works on a local artifact folder, not {artifacts.uri!r}: use the storage "
            "provider's lifecycle rules for object stores"
        )
    return Path(backend.root)


def stored_objects(artifacts: ArtifactStore) -> Iterator[OnDisk]:
    """Yield every object under ``objects/ab/cdef…``, with the address it is stored under."""
    objects = _local_root(artifacts) / "objects"
    if not objects.is_dir():
        return
    for shard in sorted(objects.iterdir()):
        if not shard.is_dir() or shard.is_symlink() or len(shard.name) != 2:
            continue
        for path in sorted(shard.iterdir()):
            address = shard.name + path.name
            if len(address) != 64 or not path.is_file() or path.is_symlink():
                continue
            info = path.stat()
            yield OnDisk(path, info.st_size, info.st_mtime, address)


def temp_files(artifacts: ArtifactStore) -> Iterator[OnDisk]:
    """Yield the ``tmp/*.part`` files: writes in progress, or left by a dead writer."""
    tmp = _local_root(artifacts) / "tmp"
    if not tmp.is_dir():
        return
    for path in sorted(tmp.iterdir()):
        if path.name.endswith(".part") and path.is_file() and not path.is_symlink():
            info = path.stat()
            yield OnDisk(path, info.st_size, info.st_mtime)


def remove(path: Path) -> bool:
    """Delete one file; return False if it was already gone."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def address_of(path: Path) -> str:
    """Return the address of an object file, stored (``objects/ab/cd…``) or trashed.

    >>> address_of(Path("objects/ab/" + "c" * 62)) == "ab" + "c" * 62
    True
    """
    return path.name if len(path.name) == 64 else path.parent.name + path.name


def trashed_objects(artifacts: ArtifactStore) -> Iterator[OnDisk]:
    """Yield the objects a gc moved to ``trash/`` and did not delete (it died meanwhile)."""
    trash = _local_root(artifacts) / TRASH
    if not trash.is_dir():
        return
    for path in sorted(trash.iterdir()):
        if len(path.name) == 64 and path.is_file() and not path.is_symlink():
            info = path.stat()
            yield OnDisk(path, info.st_size, info.st_mtime, path.name)


def to_trash(path: Path, artifacts: ArtifactStore) -> Path | None:
    """Move a stored object to ``trash/``; return where it went, None if already gone."""
    trash = _local_root(artifacts) / TRASH
    if path.parent == trash:
        return path
    trash.mkdir(exist_ok=True)
    target = trash / address_of(path)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def restore(trashed: Path, artifacts: ArtifactStore) -> None:
    """Put a trashed object back under its address."""
    address = address_of(trashed)
    final = _local_root(artifacts) / "objects" / address[:2] / address[2:]
    final.parent.mkdir(parents=True, exist_ok=True)
    # A writer may have stored the same bytes again meanwhile: same address, same content.
    with contextlib.suppress(FileNotFoundError):
        os.replace(trashed, final)
