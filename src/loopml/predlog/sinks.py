"""Where segments go: a local folder (temp file, fsync, rename) or any fsspec filesystem."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

from loopml.predlog.format import _TMP_SUFFIX, log

# ---------------------------------------------------------------------------------- sinks


def _day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


class _Namer:
    """Segment names that sort by time and never collide, even across hosts."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.token = secrets.token_hex(3)
        self.seq = 0
        self.last_ms = 0

    def next(self) -> tuple[int, str]:
        # never backwards, even if the clock is set back: names are the monitor's cursor
        ms = max(time.time_ns() // 1_000_000, self.last_ms)
        self.last_ms = ms
        self.seq += 1
        return ms, f"{ms:013d}-{self.pid}-{self.token}-{self.seq:06d}.parquet"


def _parquet_bytes(table: pa.Table) -> pa.Buffer:
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class _LocalSink:
    """Segments in a local folder: temp file, fsync, rename, fsync the folder."""

    def __init__(self, root: Path, kind: str) -> None:
        self.base = root / kind
        self.where = str(self.base)
        self._names = _Namer()
        self._known: set[Path] = set()

    def open(self) -> None:
        try:
            self._ensure(self.base)
        except OSError as exc:
            raise InvalidInput(f"prediction log folder {self.base}: cannot create it "
                               f"({exc.strerror}); give a writable folder") from exc
        self._remove_leftovers()

    def _ensure(self, folder: Path) -> None:
        """Create ``folder`` (and parents) durably: each new entry's parent is fsynced."""
        if folder in self._known:
            return
        missing = []
        current = folder
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            _fsync_dir(path.parent)
        self._known.add(folder)

    def _remove_leftovers(self) -> None:
        """Delete temp files of killed writers in the last two day folders (unlocked ones)."""
        from loopml.artifacts.backends import is_locked

        today = datetime.now(UTC)
        for day in {_day(int(today.timestamp() * 1000)),
                    _day(int((today - timedelta(days=1)).timestamp() * 1000))}:
            folder = self.base / day
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.endswith(_TMP_SUFFIX) and not is_locked(path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    def publish(self, table: pa.Table) -> str:
        try:
            return self._publish(table)
        except OSError:
            self._known.clear()  # a folder removed under us is made again on the retry
            raise

    def _publish(self, table: pa.Table) -> str:
        import pyarrow.parquet as pq

        from loopml.artifacts.backends import lock_file

        names = self._names
        tmp_dir = self.base / _day(time.time_ns() // 1_000_000)
        self._ensure(tmp_dir)
        tmp = tmp_dir / f".{names.pid}-{names.token}-{names.seq + 1:06d}{_TMP_SUFFIX}"
        with tmp.open("wb") as f:
            # locked while written: a starting writer removes only unlocked (dead) temp files
            lock_file(f.fileno())
            try:
                pq.write_table(table, f, compression="zstd")
                f.flush()
                os.fsync(f.fileno())
                # the name is taken only now, so a segment becomes visible within
                # microseconds of its timestamp (see segments_after's settle_seconds)
                ms, name = names.next()
                final_dir = self.base / _day(ms)
                self._ensure(final_dir)
                os.replace(tmp, final_dir / name)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
        # The segment is published: a failure from here on must not make the writer retry
        # (the rows would be written twice), so it is only logged.
        try:
            _fsync_dir(final_dir)
            if final_dir != tmp_dir:
                _fsync_dir(tmp_dir)
        except OSError as exc:
            log.warning("prediction log %s: cannot fsync %s (%s)", self.where, final_dir, exc)
        return str(final_dir / name)


class _FsspecSink:
    """Segments on an fsspec filesystem, each published by one ``pipe`` (one PUT)."""

    def __init__(self, fs: AbstractFileSystem, base: str, kind: str, url: str) -> None:
        self.fs = fs
        self.base = f"{base.rstrip('/')}/{kind}"
        self.where = f"{url.rstrip('/')}/{kind}"
        self._names = _Namer()
        self._retry: tuple[pa.Table, int, str] | None = None

    def open(self) -> None:
        try:
            self.fs.makedirs(self.base, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"prediction log folder {self.where}: cannot create it ({exc}); "
                               "give a writable location") from exc

    def publish(self, table: pa.Table) -> str:
        data = _parquet_bytes(table)
        # A retry of the same table keeps its name: a PUT that landed but answered an
        # error is then overwritten, not written twice under a second name.
        if self._retry is not None and self._retry[0] is table:
            _, ms, name = self._retry
        else:
            ms, name = self._names.next()
            self._retry = (table, ms, name)
        folder = f"{self.base}/{_day(ms)}"
        self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe_file(f"{folder}/{name}", data.to_pybytes())
        self._retry = None
        return f"{folder}/{name}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def split_location(folder: str | os.PathLike[str]) -> tuple[AbstractFileSystem | None, str]:
    """Return (None, local path) or (fsspec filesystem, path in it) for a log folder.

    >>> split_location("file:///var/log/loopml")
    (None, '/var/log/loopml')
    """
    text = os.fspath(folder)
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"prediction log folder {folder!r} must be a path or a URL")
    if text.startswith("file://"):
        return None, text.removeprefix("file://")
    if "://" not in text:
        return None, text
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"prediction log folder {text!r}: {exc} (install the fsspec driver "
                           "for this scheme, e.g. pip install s3fs)") from exc
    return fs, base


def sink_for(folder: str | os.PathLike[str], kind: str) -> _LocalSink | _FsspecSink:
    """Return the sink publishing ``kind`` segments under ``folder`` (not opened yet)."""
    fs, base = split_location(folder)
    if fs is None:
        return _LocalSink(Path(base).expanduser().absolute(), kind)
    return _FsspecSink(fs, base, kind, os.fspath(folder))


