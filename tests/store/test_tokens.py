"""API tokens in the store, on each backend: only a sha256 of the secret is ever stored."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from loopml.errors import AlreadyExists, InvalidInput, NotFound
from loopml.store.tokens import split_token


def test_create_returns_the_token_once_and_stores_only_its_hash(store):
    record, token = store.tokens.create("ci", role="predict", created_by="alice")
    assert (record.name, record.role, record.created_by, record.active) == \
        ("ci", "predict", "alice", True)
    assert record.revoked_at is None and record.last_used_at is None
    prefix, secret = split_token(token)
    assert token == f"lml_{prefix}_{secret}" and prefix == record.prefix
    assert len(secret) >= 43  # 32 random bytes, base64url
    with store.read() as conn:
        row = conn.execute(text("SELECT * FROM api_tokens")).mappings().one()
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()  # independent
    assert all(secret not in str(value) for value in row.values())
    assert store.tokens.verify(token) == record


def test_tokens_are_random_and_distinct(store):
    tokens = [store.tokens.create(f"t{i}", role="admin", created_by="a")[1] for i in range(5)]
    assert len(set(tokens)) == len({split_token(t)[0] for t in tokens}) == 5


def test_list_never_carries_a_secret_or_hash(store):
    _, token = store.tokens.create("ci", role="predict", created_by="a")
    store.tokens.create("ops", role="admin", created_by="b")
    records = store.tokens.list()
    assert [(r.name, r.role) for r in records] == [("ci", "predict"), ("ops", "admin")]
    secret = split_token(token)[1]
    assert secret not in repr(records)
    assert not any(hasattr(r, "token_hash") for r in records)


def test_a_wrong_secret_with_the_right_prefix_is_refused(store):
    _, token = store.tokens.create("ci", role="predict", created_by="a")
    prefix, secret = split_token(token)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.tokens.verify(f"lml_{prefix}_{wrong}") is None
    assert store.tokens.verify(f"lml_{'0' * 12}_{secret}") is None  # right secret, wrong prefix


@pytest.mark.parametrize("bad", [None, "", "lml_", "hunter2", "Bearer x", "lml_zz_zz", 42,
                                 "lml_0123456789ab_" + "é" * 43])
def test_malformed_tokens_are_refused(store, bad):
    store.tokens.create("ci", role="predict", created_by="a")
    assert store.tokens.verify(bad) is None


def test_revoke_refuses_the_token_and_keeps_the_row(store):
    _, token = store.tokens.create("ci", role="predict", created_by="a")
    record, now = store.tokens.revoke("ci")
    assert now and not record.active and record.revoked_at is not None
    assert store.tokens.verify(token) is None
    again, now = store.tokens.revoke("ci")
    assert not now and again.revoked_at == record.revoked_at  # the first time is kept
    assert [r.active for r in store.tokens.list()] == [False]
    with pytest.raises(NotFound, match="no token named 'nope'.*loopml tokens list"):
        store.tokens.revoke("nope")


def test_duplicate_names_are_refused_even_after_revoke(store):
    store.tokens.create("ci", role="predict", created_by="a")
    with pytest.raises(AlreadyExists, match="token name 'ci' is taken \\(it is active\\)"):
        store.tokens.create("ci", role="admin", created_by="b")
    store.tokens.revoke("ci")
    with pytest.raises(AlreadyExists, match="revoked token keeps its name"):
        store.tokens.create("ci", role="predict", created_by="a")
    assert len(store.tokens.list()) == 1


@pytest.mark.parametrize(("name", "role", "match"), [
    ("bad name", "predict", "token name 'bad name': expected a letter or digit"),
    ("", "predict", "token name ''"),
    ("x" * 65, "predict", "up to 63"),
    ("ci", "root", "token role 'root': expected one of predict, admin"),
    ("ci", "Admin", "token role"),
])
def test_bad_names_and_roles_are_clear_errors(store, name, role, match):
    with pytest.raises(InvalidInput, match=match):
        store.tokens.create(name, role=role, created_by="a")
    assert store.tokens.list() == []


def test_mark_used_records_the_time(store):
    record, token = store.tokens.create("ci", role="predict", created_by="a")
    store.tokens.mark_used(record.id)
    used = store.tokens.verify(token).last_used_at
    assert used is not None and used >= record.created_at
