"""Bearer tokens on the server: 401 without a valid token, 403 below the route's role, the
cache's revocation window, which hosts need auth, and a token never shown after creation."""

from __future__ import annotations

import contextlib
import json
import logging

import pytest

from loopml.errors import LoopmlError
from loopml.serve.auth import (
    ANONYMOUS,
    Authenticator,
    AuthError,
    Forbidden,
    Unauthorized,
    auth_required,
)
from loopml.store import Store
from loopml.store.tokens import split_token
from loopml_cli import run_loopml


class Clock:
    """A clock the test moves by hand, so cache expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(sqlite_url):
    return Store(sqlite_url).connect()


@pytest.fixture
def tokens(store):
    _, predict = store.tokens.create("ci-predict", role="predict", created_by="test")
    _, admin = store.tokens.create("ops", role="admin", created_by="test")
    return {"predict": predict, "admin": admin}


def _refused(auth: Authenticator, header: str | None, *, need: str = "predict") -> AuthError:
    with pytest.raises(AuthError) as info:
        auth.check(header, need=need)
    return info.value


def _assert_hidden(exc: BaseException, *secrets: str) -> None:
    shown = " ".join([str(exc), repr(exc), repr(exc.args), json.dumps(exc.headers)])
    for secret in secrets:
        assert secret not in shown
        assert split_token(secret) is None or split_token(secret)[1] not in shown


def test_a_valid_token_is_let_in_with_its_name_and_role(store, tokens):
    auth = Authenticator(store, enabled=True)
    principal = auth.check(f"Bearer {tokens['predict']}", need="predict")
    assert (principal.name, principal.role, principal.authenticated) == \
        ("ci-predict", "predict", True)
    assert auth.check(f"bearer   {tokens['admin']}  ", need="predict").name == "ops"


def test_admin_may_do_everything_and_predict_only_predict(store, tokens):
    auth = Authenticator(store, enabled=True)
    assert auth.check(f"Bearer {tokens['admin']}", need="admin").role == "admin"
    assert auth.check(f"Bearer {tokens['admin']}", need="predict").role == "admin"
    exc = _refused(auth, f"Bearer {tokens['predict']}", need="admin")
    assert isinstance(exc, Forbidden) and isinstance(exc, LoopmlError)
    assert (exc.status_code, exc.status) == (403, 403)
    assert "token 'ci-predict' has role predict; this route needs admin" in str(exc)
    assert 'error="insufficient_scope"' in exc.headers["WWW-Authenticate"]
    _assert_hidden(exc, tokens["predict"])


@pytest.mark.parametrize(("header", "match"), [
    (None, "this route needs a bearer token"),
    ("", "this route needs a bearer token"),
    ("   ", "this route needs a bearer token"),
    ("Bearer", "no token after 'Bearer'"),
    ("Bearer   ", "no token after 'Bearer'"),
    ("Basic dXNlcjpodW50ZXIy", "does not use the Bearer scheme"),
    ("Token lml_abc", "does not use the Bearer scheme"),
    ("Bearer hunter2", "not valid"),
    ("Bearer lml_0123456789ab_" + "x" * 43, "not valid"),
])
def test_no_usable_token_is_401_with_a_bearer_challenge(store, tokens, header, match):
    exc = _refused(Authenticator(store, enabled=True), header)
    assert isinstance(exc, Unauthorized) and exc.status_code == 401
    assert exc.headers["WWW-Authenticate"].startswith("Bearer")
    assert match in str(exc)
    if header and len(header.split()) == 2:
        _assert_hidden(exc, header.split()[1])
    assert "dXNlcjpodW50ZXIy" not in str(exc) and "hunter2" not in str(exc)


def test_a_wrong_secret_with_a_real_prefix_is_401_and_not_shown(store, tokens):
    prefix, secret = split_token(tokens["admin"])
    forged = f"lml_{prefix}_{secret[::-1]}"
    exc = _refused(Authenticator(store, enabled=True), f"Bearer {forged}", need="admin")
    assert isinstance(exc, Unauthorized)
    assert 'error="invalid_token"' in exc.headers["WWW-Authenticate"]
    _assert_hidden(exc, forged, tokens["admin"])


def test_revocation_takes_effect_when_the_cached_answer_expires(store, tokens):
    clock = Clock()
    auth = Authenticator(store, enabled=True, cache_seconds=5, clock=clock)
    header = f"Bearer {tokens['predict']}"
    assert auth.check(header, need="predict").name == "ci-predict"
    store.tokens.revoke("ci-predict")
    clock.now += 4.9  # within the window: the cached answer stands
    assert auth.check(header, need="predict").name == "ci-predict"
    clock.now += 0.2  # past it: the store is read again
    assert isinstance(_refused(auth, header), Unauthorized)
    assert auth.check(f"Bearer {tokens['admin']}", need="admin").name == "ops"


def test_answers_are_cached_so_requests_do_not_read_the_store(store, tokens, monkeypatch):
    clock = Clock()
    auth = Authenticator(store, enabled=True, cache_seconds=5, clock=clock)
    calls = []
    verify = store.tokens.verify
    monkeypatch.setattr(store.tokens, "verify", lambda t: calls.append(1) or verify(t))
    for _ in range(20):
        auth.check(f"Bearer {tokens['predict']}", need="predict")
        _refused(auth, "Bearer lml_0123456789ab_" + "y" * 43)
    assert len(calls) == 2
    clock.now += 6
    auth.check(f"Bearer {tokens['predict']}", need="predict")
    assert len(calls) == 3


def test_the_cache_is_bounded(store, tokens):
    auth = Authenticator(store, enabled=True, max_cached=3)
    for i in range(10):
        _refused(auth, f"Bearer lml_{i:012x}_" + "z" * 43)
    assert len(auth._cache) == 3


def test_use_is_recorded(store, tokens):
    Authenticator(store, enabled=True).check(f"Bearer {tokens['admin']}", need="admin")
    used = {r.name: r.last_used_at for r in store.tokens.list()}
    assert used["ops"] is not None and used["ci-predict"] is None


def test_auth_off_lets_everyone_in_without_reading_the_store(tokens):
    auth = Authenticator(None, enabled=False)  # type: ignore[arg-type]
    assert auth.check(None, need="admin") is ANONYMOUS
    assert auth.check("Basic junk", need="predict") is ANONYMOUS


def test_an_unknown_need_is_a_programming_error(store):
    with pytest.raises(ValueError, match="need='root'"):
        Authenticator(store, enabled=True).check("Bearer x", need="root")  # type: ignore[arg-type]


def test_tokens_are_never_logged(store, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    auth = Authenticator(store, enabled=True, clock=clock)
    prefix, secret = split_token(tokens["predict"])
    attempts = [tokens["predict"], tokens["admin"], f"lml_{prefix}_{secret[::-1]}", "hunter2"]
    for token in attempts:
        for need in ("predict", "admin"):
            with contextlib.suppress(AuthError):
                auth.check(f"Bearer {token}", need=need)
    store.tokens.revoke("ops")
    clock.now += 10
    with pytest.raises(Unauthorized):
        auth.check(f"Bearer {tokens['admin']}", need="admin")
    assert "refused token 'ci-predict'" in caplog.text  # the log says who, never what
    for token in attempts:
        assert token not in caplog.text
        assert split_token(token) is None or split_token(token)[1] not in caplog.text


@pytest.mark.parametrize(("host", "required"), [
    ("127.0.0.1", False), ("127.3.4.5", False), ("::1", False), ("[::1]", False),
    ("localhost", False), ("LOCALHOST", False), ("::ffff:127.0.0.1", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.20", True), ("10.0.0.5", True),
    ("fe80::1", True), ("example.com", True), ("localhost.example.com", True), ("", True),
])
def test_auth_is_required_off_loopback(host, required):
    assert auth_required(host, no_auth=False) is required
    assert auth_required(host, no_auth=True) is False


@pytest.mark.slow
def test_cli_shows_the_token_once_and_never_again(tmp_path):
    home = tmp_path / "ws"
    created = run_loopml("tokens", "create", "--name", "ci", "--role", "predict", home=home)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    assert "cannot be shown again" in lines[0]
    token = lines[-1]
    prefix, secret = split_token(token)
    assert secret not in created.stderr
    assert Store(f"sqlite:///{home / 'loopml.db'}").connect().tokens.verify(token).name == "ci"

    listed = run_loopml("tokens", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["prefix"], row["active"]) == \
        ("ci", "predict", prefix, True)
    table = run_loopml("tokens", "list", home=home)
    revoked = run_loopml("tokens", "revoke", "ci", home=home)
    assert revoked.returncode == 0 and "revoked token ci" in revoked.stdout
    again = run_loopml("tokens", "revoke", "ci", home=home)
    assert again.returncode == 0 and "already revoked" in again.stdout
    duplicate = run_loopml("tokens", "create", "--name", "ci", "--role", "admin", home=home)
    for result in (listed, table, revoked, again, duplicate):
        assert secret not in result.stdout + result.stderr
    assert duplicate.returncode == 2
    assert duplicate.stderr.strip() == ("loopml: error: token name 'ci' is taken (a revoked "
                                        "token keeps its name): choose another name (see "
                                        "`loopml tokens list`)")
    assert json.loads(run_loopml("tokens", "list", "--json", home=home).stdout)[0]["active"] \
        is False


@pytest.mark.slow
@pytest.mark.parametrize(("args", "contains"), [
    (("create", "--name", "ci", "--role", "root"), "token role 'root': expected one of"),
    (("create", "--name", "bad name", "--role", "predict"), "token name 'bad name'"),
    (("create", "--role", "predict"), "Missing option '--name'"),
    (("revoke", "nope"), "no token named 'nope'"),
])
def test_cli_mistakes_are_one_line_with_exit_code_2(tmp_path, args, contains):
    home = tmp_path / "ws"
    if args[0] == "revoke":
        run_loopml("tokens", "create", "--name", "ci", "--role", "predict", home=home)
    result = run_loopml("tokens", *args, home=home)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loopml: error: ")
    assert contains in lines[0] and "Traceback" not in result.stderr
    if args[0] == "create":
        assert not (home / "loopml.db").exists()  # nothing made for a refused command
