"""Where artifact bytes physically live: a local folder, or any fsspec filesystem.

A backend knows keys (``objects/ab/cdef…``) made by the artifact store, never names a
user typed. Writing is two-phase: bytes go to a temporary object, then ``commit`` moves
them under their final key in one step, so a reader never sees half an object.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from loopml.errors import InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


class PendingWrite(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self, key: str) -> None: ...
    def abort(self) -> None: ...


class Backend(Protocol):
    """The few operations the artifact store needs from a filesystem."""

    root: str

    def connect(self, *, create: bool = True) -> None: ...
    def exists(self, key: str) -> bool: ...
    def begin_write(self) -> PendingWrite: ...
    def open_read(self, key: str) -> IO[bytes]: ...
    def delete(self, key: str) -> None: ...
    def touch(self, key: str) -> None: ...


class LocalBackend:
    """A folder on this machine; temp files are fsynced and renamed into place."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(Path(root).expanduser().absolute())
        self._tmp = Path(self.root, "tmp")

    def connect(self, *, create: bool = True) -> None:
        if not create:
            return  # a reader of a missing folder finds no objects; nothing is made for it
        try:
            Path(self.root, "objects").mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot use artifact folder {self.root}: {exc.strerror} "
                "(set LOOPML_ARTIFACTS_URI or LOOPML_HOME to a writable folder)"
            ) from exc

    def _path(self, key: str) -> Path:
        return Path(self.root, *key.split("/"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def begin_write(self) -> _LocalPending:
        return _LocalPending(self)

    def open_read(self, key: str) -> IO[bytes]:
        return self._path(key).open("rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def touch(self, key: str) -> None:
        # A writer that finds its bytes already stored marks them fresh, so `loopml gc`
        # (which spares young objects) does not take them before the writer records them.
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._path(key))


class _LocalPending:
    """A temp file ``tmp/<pid>-<random>.part``, locked (flock) while it is written.

    The lock dies with the process, even on SIGKILL, so `loopml gc` can tell a live
    write from a leftover one.
    """

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._tmp_path = backend._tmp / f"{os.getpid()}-{uuid.uuid4().hex}.part"
        self._file = self._tmp_path.open("xb")
        lock_file(self._file.fileno())

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self, key: str) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._backend._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp_path, final)
        _fsync_dir(final.parent)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp_path.unlink()


def lock_file(fd: int) -> None:
    """Hold an exclusive advisory lock on ``fd`` until it is closed (no-op without flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: gc falls back on the age threshold alone
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def is_locked(path: Path) -> bool:
    """Return whether another open file holds a lock on ``path`` (a write in progress)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock, if it got one
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsspecBackend:
    """Any fsspec filesystem (``s3://bucket/prefix``, ``memory://…``, ``gcs://…``)."""

    def __init__(self, uri: str) -> None:
        self.root = uri.rstrip("/")
        self._fs: AbstractFileSystem | None = None
        self._base = ""

    def connect(self, *, create: bool = True) -> None:
        import fsspec

        try:
            fs, base = fsspec.core.url_to_fs(self.root)
        except (ImportError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot use artifact store {self.root!r}: {exc} "
                "(install the fsspec driver for this scheme, e.g. pip install s3fs)"
            ) from exc
        self._fs, self._base = fs, base.rstrip("/")

    @property
    def fs(self) -> AbstractFileSystem:
        if self._fs is None:
            raise RuntimeError("FsspecBackend.connect() must be called first")
        return self._fs

    def _path(self, key: str) -> str:
        return f"{self._base}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def begin_write(self) -> _FsspecPending:
        return _FsspecPending(self)

    def open_read(self, key: str) -> IO[bytes]:
        return self.fs.open(self._path(key), "rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(key))

    def touch(self, key: str) -> None:
        pass  # object stores cannot refresh a date without rewriting the object


class _FsspecPending:
    def __init__(self, backend: FsspecBackend) -> None:
        self._backend = backend
        self._tmp_path = backend._path(f"tmp/{uuid.uuid4().hex}.part")
        self._file = backend.fs.open(self._tmp_path, "wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self, key: str) -> None:
        self._file.close()  # object stores publish the object whole on close
        self._backend.fs.mv(self._tmp_path, self._backend._path(key))

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._backend.fs.rm(self._tmp_path)


def backend_for(uri: str) -> Backend:
    """Return the backend for an artifact root: a path or ``file://`` is local, else fsspec.

    >>> backend_for("/tmp/art").root
    '/tmp/art'
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"artifact store URI {uri!r} must be a path or a URL")
    if uri.startswith("file://"):
        return LocalBackend(uri.removeprefix("file://"))
    if "://" not in uri:
        return LocalBackend(uri)
    return FsspecBackend(uri)
