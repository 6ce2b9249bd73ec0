"""Workspace secrets (signing and hashing keys): read from the environment or a key file."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from loopml.errors import InvalidInput

MIN_LENGTH = 32


def read_or_create_secret(path: Path, *, env: str | None, env_name: str, create: bool = True,
                          min_length: int = MIN_LENGTH) -> bytes | None:
    """Return the secret from ``env`` if set, else from ``path`` (made when ``create``).

    The file is written whole to a temporary name and linked into place, so a reader never
    sees half a key and two racing processes end up with the same one. A secret shorter
    than ``min_length`` characters is refused, from either place. None when there is no
    file and ``create`` is false.
    """
    if env:
        secret = env.strip().encode()
        if len(secret) < min_length:
            raise InvalidInput(f"{env_name} is {len(secret)} bytes; a key needs at least "
                               f"{min_length} (a short key can be guessed): use e.g. "
                               "`openssl rand -hex 32`")
        return secret
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    key = path.read_bytes().strip()
    if len(key) < min_length:
        raise InvalidInput(f"{path} holds no usable key (under {min_length} bytes); delete it "
                           f"to have a new one made, or set {env_name}")
    return key
