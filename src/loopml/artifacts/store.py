"""The content-addressed artifact store: bytes are stored under their sha256 and checked on read."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loopml.artifacts.backends import Backend, backend_for
from loopml.errors import ArtifactCorrupted, InvalidInput, NotFound

CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def check_sha256(sha256: object) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits, the only shape of an address."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 address (64 lowercase hex digits)")
    return sha256


def object_key(sha256: str) -> str:
    """Return the backend key of an address.

    >>> object_key("ab" + "0" * 62)
    'objects/ab/000000000000000000000000000000000000000000000000000000000000'
    """
    check_sha256(sha256)
    return f"objects/{sha256[:2]}/{sha256[2:]}"


class ArtifactStore:
    """Immutable blobs addressed by the sha256 of their content.

    Writes go to a temporary object and are renamed into place once complete (after an
    fsync, on local disk), so a crash never leaves a partial blob under an address. Every
    read hashes the bytes again and raises :class:`~loopml.errors.ArtifactCorrupted` if
    they do not match.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._backend: Backend = backend_for(uri)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.uri!r})"

    def connect(self, *, create: bool = True) -> ArtifactStore:
        """Open the store (creating the root folder if ``create``); return self."""
        self._backend.connect(create=create)
        return self

    @property
    def root(self) -> str:
        return self._backend.root

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store ``data``; return its address and size."""
        return self.put_chunks([data])

    def put_file(self, path: str | os.PathLike[str], *, follow_symlinks: bool = True
                 ) -> StoredBlob:
        """Store the content of the file at ``path``.

        With ``follow_symlinks=False`` a path that is (or became, since it was listed) a
        symbolic link is refused instead of read.
        """
        path = Path(path)
        if not follow_symlinks and path.is_symlink():
            raise InvalidInput(f"cannot log {path}: it is a symbolic link (links are not "
                               "followed; copy the file it points to instead)")
        if not path.is_file():
            raise InvalidInput(f"cannot log {path}: it is not a file")
        flags = os.O_RDONLY | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            why = ("it is a symbolic link (links are not followed; copy the file it points "
                   "to instead)" if exc.errno == errno.ELOOP else exc.strerror)
            raise InvalidInput(f"cannot log {path}: {why}") from exc
        with os.fdopen(fd, "rb") as handle:
            return self.put_chunks(iter(lambda: handle.read(CHUNK), b""))

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the concatenation of ``chunks``, streaming; return its address and size."""
        digest = hashlib.sha256()
        size = 0
        pending = self._backend.begin_write()
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                pending.write(chunk)
            sha256 = digest.hexdigest()
            key = object_key(sha256)
            if self._backend.exists(key):
                # Same content is already stored, but unreferenced bytes may be taken by
                # `loopml gc` before the caller records them: touch them (gc spares young
                # objects and re-checks their age after moving them to its trash), then
                # look again and store this copy if they went meanwhile.
                self._backend.touch(key)
                if self._backend.exists(key):
                    pending.abort()
                else:
                    pending.commit(key)
            else:
                pending.commit(key)
        except BaseException:
            pending.abort()
            raise
        return StoredBlob(sha256=sha256, size=size)

    def exists(self, sha256: str) -> bool:
        """Return whether bytes are stored under this address."""
        return self._backend.exists(object_key(sha256))

    def get_bytes(self, sha256: str) -> bytes:
        """Return the bytes stored under ``sha256``, verified."""
        return b"".join(self.iter_chunks(sha256))

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """Yield the stored bytes in chunks; raise ArtifactCorrupted at the end if they differ.

        A caller that writes the chunks somewhere must discard them when this raises;
        :meth:`get_to_path` does that.
        """
        try:
            handle: IO[bytes] = self._open_read(sha256)
        except FileNotFoundError as exc:
            raise NotFound(
                f"artifact {sha256[:12]}… is recorded but missing from {self.root}: "
                "restore it from a backup of the artifact store"
            ) from exc
        digest = hashlib.sha256()
        with handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                yield chunk
        actual = digest.hexdigest()
        if actual != sha256:
            raise ArtifactCorrupted(
                f"artifact in {self.root} failed its sha256 check: expected {sha256}, "
                f"the stored bytes hash to {actual}; the file was changed or damaged on disk"
            )

    def _open_read(self, sha256: str) -> IO[bytes]:
        try:
            return self._backend.open_read(object_key(sha256))
        except FileNotFoundError:
            # `loopml gc` moves objects to its trash before deleting them, and puts back
            # one recorded meanwhile: a reader in between finds it there.
            return self._backend.open_read(f"trash/{sha256}")

    def get_to_path(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Write the verified bytes to ``dest`` (replaced atomically); return the path."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with tmp.open("xb") as handle:
                for chunk in self.iter_chunks(sha256):
                    handle.write(chunk)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return dest

    def delete(self, sha256: str) -> None:
        """Remove the bytes under ``sha256`` (callers check that nothing references them)."""
        self._backend.delete(object_key(sha256))
