"""Bearer tokens on the server: who is calling, and may they use this route.

:class:`Authenticator` checks an ``Authorization: Bearer <token>`` header against the store's
API tokens (``loopml tokens create``). A ``predict`` token may call prediction routes; an
``admin`` token may call every route. Errors carry their HTTP status and headers, so the app
maps them in one handler::

    @app.exception_handler(AuthError)
    def _auth(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code,
                            headers=exc.headers)

:func:`auth_required` decides whether a server bound to a host needs tokens at all: it does
on anything but loopback, unless the user turns auth off explicitly.

A token's value never appears in a message, a log line or an exception: errors say what
was wrong with the header, not what it held.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.errors import LoopmlError, StoreError
from loopml.store.tokens import ROLES, Role, TokenRecord

if TYPE_CHECKING:
    from loopml.store import Store

__all__ = ["AuthError", "Authenticator", "Forbidden", "Principal", "Unauthorized",
           "auth_required", "bearer_token"]

log = logging.getLogger(__name__)

_REALM = 'Bearer realm="loopml"'
_HOW = "send 'Authorization: Bearer <token>' with a token from `loopml tokens create`"
# Writing last_used_at on every cache miss would make each request a write; once a minute
# tells an admin whether a token is in use just as well.
_TOUCH_EVERY_S = 60.0


class AuthError(LoopmlError):
    """A request the server refuses for who sent it; ``status_code`` and ``headers`` say how."""

    status_code = 401
    headers: dict[str, str] = {"WWW-Authenticate": _REALM}

    @property
    def status(self) -> int:
        """The HTTP status, under the name serve's other errors use."""
        return self.status_code


class Unauthorized(AuthError):
    """No usable bearer token: missing, another scheme, malformed, unknown or revoked (401)."""

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message)
        # RFC 6750: a token that was sent but is no good is error="invalid_token".
        self.headers = {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'
                        if invalid_token else _REALM}


class Forbidden(AuthError):
    """A valid token whose role does not allow the route, e.g. a predict token on admin (403)."""

    status_code = 403

    def __init__(self, message: str, *, need: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate":
                        f'{_REALM}, error="insufficient_scope", scope="{need}"'}


@dataclass(frozen=True)
class Principal:
    """Who made a request: a token's name and role, or anyone when auth is off."""

    name: str
    role: str
    authenticated: bool

    def may(self, need: str) -> bool:
        """Return whether this principal's role allows a route that needs ``need``.

        >>> Principal("ci", "admin", True).may("predict")
        True
        """
        return ROLES.index(self.role) >= ROLES.index(need)


ANONYMOUS = Principal(name="anonymous", role="admin", authenticated=False)


def bearer_token(authorization_header: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header; Unauthorized otherwise.

    >>> bearer_token("Bearer lml_abc")
    'lml_abc'
    """
    header = (authorization_header or "").strip()
    if not header:
        raise Unauthorized(f"this route needs a bearer token: {_HOW}")
    scheme, _, value = header.partition(" ")
    # The scheme is not echoed either: a client that sends Basic sends a password with it.
    if scheme.lower() != "bearer":
        raise Unauthorized(f"the Authorization header does not use the Bearer scheme: {_HOW}")
    if not value.strip():
        raise Unauthorized(f"the Authorization header has no token after 'Bearer': {_HOW}")
    return value.strip()


def auth_required(host: str, *, no_auth: bool) -> bool:
    """Return whether a server bound to ``host`` must check tokens.

    Yes for any host that is not loopback (127.0.0.0/8, ::1, localhost), including
    ``0.0.0.0`` and ``::`` (every interface), unless ``no_auth`` turns auth off explicitly.

    >>> auth_required("127.0.0.1", no_auth=False), auth_required("0.0.0.0", no_auth=False)
    (False, True)
    """
    if no_auth:
        return False
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return True  # any other name may resolve to a public interface
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_loopback


class Authenticator:
    """Checks bearer tokens against the store, with a short cache per token.

    A token's answer (its record, or "not valid") is kept ``cache_seconds``, so most requests
    do not reach the database; a revoked token is refused once its cached answer expires.
    With ``enabled=False`` every request is let in as :data:`ANONYMOUS`.

    Examples
    --------
    >>> auth = Authenticator(store, enabled=True)            # doctest: +SKIP
    >>> auth.check("Bearer lml_…", need="predict").name      # doctest: +SKIP
    'ci-predict'
    """

    def __init__(self, store: Store, *, enabled: bool, cache_seconds: float = 5.0,
                 max_cached: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.enabled = enabled
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached
        self.clock = clock
        # Keyed by sha256 of the token, so the plaintext is not kept in memory longer than a
        # request; bounded, since random bad tokens must not grow it without end.
        self._cache: OrderedDict[bytes, tuple[float, TokenRecord | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._touched: dict[int, float] = {}

    def check(self, authorization_header: str | None, *, need: Role) -> Principal:
        """Return who sent ``authorization_header`` if their token allows a ``need`` route.

        Raises Unauthorized (401) without a valid, unrevoked bearer token and Forbidden (403)
        when the token's role is below ``need``; an admin token may do everything.
        """
        if need not in ROLES:
            raise ValueError(f"need={need!r}: expected one of {', '.join(ROLES)}")
        if not self.enabled:
            return ANONYMOUS
        record = self._lookup(bearer_token(authorization_header))
        if record is None:
            log.info("refused a request: bearer token unknown, malformed or revoked")
            raise Unauthorized("the bearer token is not valid (unknown, malformed or revoked): "
                               "ask an admin for a new one (`loopml tokens create`)",
                               invalid_token=True)
        principal = Principal(name=record.name, role=record.role, authenticated=True)
        if not principal.may(need):
            log.info("refused token %r (role %s) on a route that needs %s",
                     record.name, record.role, need)
            raise Forbidden(f"token {record.name!r} has role {record.role}; this route needs "
                            f"{need}: use an {need} token", need=need)
        return principal

    def clear(self) -> None:
        """Forget every cached answer (the next request of each token reads the store)."""
        with self._lock:
            self._cache.clear()

    def _lookup(self, token: str) -> TokenRecord | None:
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        record = self.store.tokens.verify(token)
        with self._lock:
            self._cache[key] = (now + self.cache_seconds, record)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        if record is not None:
            self._touch(record, now)
        return record

    def _touch(self, record: TokenRecord, now: float) -> None:
        last = self._touched.get(record.id)
        if last is not None and now - last < _TOUCH_EVERY_S:
            return
        self._touched[record.id] = now
        try:
            self.store.tokens.mark_used(record.id)
        except StoreError as exc:
            # A busy or read-only store must not refuse a valid request over a timestamp.
            log.debug("could not record the use of token %r: %s", record.name, exc)
