"""API tokens of the server: only a sha256 of each secret is stored, never the secret itself.

A token reads ``lml_<prefix>_<secret>``: ``prefix`` is 12 public hex characters that find
the row with one indexed lookup, ``secret`` is 32 random bytes from :mod:`secrets`
(base64url). The row keeps ``sha256(secret)`` in hex. A fast hash is enough here: slow
password hashes (bcrypt, argon2) exist to make guessing *low-entropy* human passwords costly,
while a 256-bit random secret cannot be guessed from its hash at any speed; a fast hash also
keeps checking a request cheap. Hashes are compared with :func:`hmac.compare_digest`.

The plaintext token exists only in the value :meth:`Tokens.create` returns; it is not
written to the database, to a log or to any message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import AlreadyExists, InvalidInput, NotFound, StoreError
from loopml.store.schema import KEY_LENGTH, ApiToken, utcnow
from loopml.store.upsert import insert_ignore

if TYPE_CHECKING:
    from loopml.store.database import Store

Role = Literal["predict", "admin"]
# Ordered from least to most allowed: a token may do what its role and every role before it may.
ROLES: tuple[str, ...] = ("predict", "admin")
TOKEN_PREFIX = "lml"
_PREFIX_HEX = 12
_SECRET_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{{_PREFIX_HEX}}})_([A-Za-z0-9_\-]{{43}})$")


@dataclass(frozen=True)
class TokenRecord:
    """A token as people see it: who and what it is for, never its secret or hash."""

    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None
    id: int

    @property
    def active(self) -> bool:
        """Whether the token is still accepted (not revoked)."""
        return self.revoked_at is None


def check_token_name(name: object) -> str:
    """Return ``name`` if it can name a token: a letter or digit, then ``A-Z a-z 0-9 _ . -``.

    >>> check_token_name("ci-predict")
    'ci-predict'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"token name {str(name)[:70]!r}: expected a letter or digit followed "
                           "by up to 63 letters, digits, '_', '.' or '-' (e.g. ci-predict)")
    return name


def check_role(role: object) -> str:
    """Return ``role`` if it is a token role (``predict`` or ``admin``).

    >>> check_role("predict")
    'predict'
    """
    if role not in ROLES:
        raise InvalidInput(f"token role {str(role)[:40]!r}: expected one of "
                           f"{', '.join(ROLES)} (predict: prediction routes only; admin: all)")
    return str(role)


def hash_secret(secret: str) -> str:
    """Return the sha256 of a token's secret part in hex, as the store keeps it.

    >>> len(hash_secret("abc"))
    64
    """
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def split_token(token: object) -> tuple[str, str] | None:
    """Return (prefix, secret) of a well-formed token, or None for anything else.

    >>> split_token("lml_0123456789ab_" + "x" * 43)[0]
    '0123456789ab'
    >>> split_token("hunter2") is None
    True
    """
    if not isinstance(token, str):
        return None
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def _record(row: Any) -> TokenRecord:
    return TokenRecord(name=row.name, role=row.role, prefix=row.prefix,
                       created_at=row.created_at, created_by=row.created_by,
                       revoked_at=row.revoked_at, last_used_at=row.last_used_at, id=row.id)


def _public_columns() -> list[Any]:
    return [c for c in ApiToken.__table__.columns if c.name != "token_hash"]


class Tokens:
    """Create, list, revoke and verify the server's API tokens in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, name: str, *, role: str, created_by: str) -> tuple[TokenRecord, str]:
        """Record a new token; return it and the plaintext token, which exists only here.

        The caller shows the plaintext once: the store cannot give it back later.
        """
        from sqlalchemy import select

        check_token_name(name)
        check_role(role)
        for _ in range(5):  # a repeated 48-bit prefix is a new draw, not an error
            prefix = secrets.token_hex(_PREFIX_HEX // 2)
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            token_hash = hash_secret(secret)
            with self._store.write() as conn:
                # ON CONFLICT DO NOTHING, then look: race-free against a concurrent create.
                insert_ignore(conn, ApiToken.__table__, [{
                    "name": name, "role": role, "prefix": prefix, "token_hash": token_hash,
                    "created_at": utcnow(), "created_by": created_by[:KEY_LENGTH],
                    "revoked_at": None, "last_used_at": None}])
                row = conn.execute(select(*_public_columns(), ApiToken.token_hash).where(
                    ApiToken.name == name)).one_or_none()
            if row is None:
                continue  # nothing inserted and the name is free: the prefix was taken
            if row.prefix == prefix and hmac.compare_digest(row.token_hash, token_hash):
                return _record(row), f"{TOKEN_PREFIX}_{prefix}_{secret}"
            state = "a revoked token keeps its name" if row.revoked_at else "it is active"
            raise AlreadyExists(f"token name {name!r} is taken ({state}): choose another "
                                "name (see `loopml tokens list`)")
        raise StoreError("could not draw an unused token prefix in 5 tries; try again")

    def list(self) -> list[TokenRecord]:
        """Return every token, revoked ones included, oldest first (never a secret or hash)."""
        from sqlalchemy import select

        with self._store.read() as conn:
            rows = conn.execute(select(*_public_columns()).order_by(ApiToken.id)).all()
        return [_record(row) for row in rows]

    def get(self, name: str) -> TokenRecord:
        """Return the token called ``name``; NotFound if there is none."""
        from sqlalchemy import select

        with self._store.read() as conn:
            row = conn.execute(select(*_public_columns()).where(ApiToken.name == name)
                               ).one_or_none()
        if row is None:
            raise NotFound(f"no token named {str(name)[:70]!r} (see `loopml tokens list`)")
        return _record(row)

    def revoke(self, name: str) -> tuple[TokenRecord, bool]:
        """Revoke the token ``name``; return it and whether this call revoked it.

        Revoking twice keeps the first time. Servers stop accepting the token once their
        cache of it expires (a few seconds).
        """
        from sqlalchemy import update

        self.get(name)
        with self._store.write() as conn:
            changed = conn.execute(update(ApiToken).where(
                ApiToken.name == name, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
            ).rowcount
        return self.get(name), bool(changed)

    def verify(self, token: str | None) -> TokenRecord | None:
        """Return the active token whose plaintext is ``token``; None for anything else.

        Malformed, unknown, wrong-secret and revoked tokens all give None; the plaintext
        is never sent to the database (the lookup is by the public prefix).
        """
        from sqlalchemy import select

        parts = split_token(token)
        if parts is None:
            return None
        prefix, secret = parts
        with self._store.read() as conn:
            row = conn.execute(select(*_public_columns(), ApiToken.token_hash).where(
                ApiToken.prefix == prefix)).one_or_none()
        if row is None:
            return None  # the prefix is public: answering fast here gives nothing away
        if not hmac.compare_digest(hash_secret(secret), row.token_hash):
            return None
        return _record(row) if row.revoked_at is None else None

    def mark_used(self, token_id: int, *, at: datetime | None = None) -> None:
        """Record that token ``token_id`` was just used (``at``, default now)."""
        from sqlalchemy import update

        with self._store.write() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token_id)
                         .values(last_used_at=at or utcnow()))
