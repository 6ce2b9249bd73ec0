"""PII detection finds planted personal data and leaves ordinary data alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from loopml.data import pii, resolve_source


def _card(rng: np.random.Generator) -> str:
    digits = [4] + list(rng.integers(0, 10, 14))
    total = 0
    for index, digit in enumerate(reversed(digits)):
        value = digit * 2 if index % 2 == 0 else digit
        total += value - 9 if value > 9 else value
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


@pytest.fixture
def planted() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 300
    return pd.DataFrame({
        "contact": [f"person{i}@mail{i % 7}.example.org" for i in range(n)],
        "reach_at": [f"+44 20 {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}"
                     for _ in range(n)],
        "payment": [_card(rng) for _ in range(n)],
        "payment_int": [int(_card(rng)) for _ in range(n)],
        "gov": [f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"
                for _ in range(n)],
        "ssn": rng.integers(0, 10, n),  # flagged by its name alone
        "amount": rng.normal(100, 20, n),
        "city": rng.choice(["Paris", "Lyon"], n),
    })


def test_planted_columns_are_found(planted):
    batch = pa.RecordBatch.from_pandas(planted, preserve_index=False)
    found = {f.column: f.kind for f in pii.detect(batch)}
    assert found == {"contact": "email", "reach_at": "phone", "payment": "card_number",
                     "payment_int": "card_number", "gov": "national_id", "ssn": "national_id"}


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_diabetes])
def test_no_false_positives_on_ordinary_datasets(loader, credit_frame):
    from loopml.demo_data import make_credit

    frame = loader(as_frame=True).frame
    customers = make_credit(500).drop(columns=["email"])  # has years_at_address, an integer
    for data in (frame, credit_frame, customers):
        assert pii.detect(pa.RecordBatch.from_pandas(data, preserve_index=False)) == []


def test_luhn_rejects_random_digit_strings():
    rng = np.random.default_rng(0)
    numbers = ["".join(map(str, rng.integers(0, 10, 16))) for _ in range(2000)]
    share = sum(pii.luhn_valid(n) for n in numbers) / len(numbers)
    assert 0.07 < share < 0.13  # one in ten passes by chance, so 80% of a column never does


def test_policies_drop_and_hash_before_storing(catalog, planted, tmp_path):
    path = tmp_path / "people.csv"
    planted.to_csv(path, index=False)
    result = catalog.add(resolve_source(path), name="people",
                         pii={"contact": "hash", "gov": "drop", "payment": "drop"})
    stored = catalog.load("people")
    assert "gov" not in stored and "payment" not in stored
    assert stored["contact"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert stored["contact"].nunique() == planted["contact"].nunique()  # joins still work
    assert not any("@" in v for v in stored["contact"])
    assert result.version.pii["applied"] == {"contact": "hash", "gov": "drop",
                                             "payment": "drop"}
    snapshot = catalog.artifacts.get_bytes(result.version.snapshot_sha256)
    assert b"person1@" not in snapshot


def test_unknown_policy_or_column_is_a_clear_error(catalog, planted, tmp_path):
    from loopml.errors import InvalidInput

    path = tmp_path / "people.csv"
    planted.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match="'contact' is 'mask'; use one of drop, hash, keep"):
        catalog.add(resolve_source(path), name="people", pii={"contact": "mask"})
    with pytest.raises(InvalidInput, match="names column 'mail', which the data does not have"):
        catalog.add(resolve_source(path), name="people", pii={"mail": "drop"})


def test_pii_key_file_is_created_once_and_hashing_needs_a_key(tmp_path, planted):
    from loopml.data import Catalog
    from loopml.data.catalog import workspace_pii_key
    from loopml.errors import InvalidInput
    from loopml.workspace import Workspace

    workspace = Workspace.from_env(tmp_path / "ws", env={})
    first = workspace_pii_key(workspace)
    assert len(first) == 64 and workspace_pii_key(workspace) == first
    assert oct((tmp_path / "ws" / "pii.key").stat().st_mode & 0o777) == "0o600"
    store, artifacts = workspace.open()
    path = tmp_path / "people.csv"
    planted.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match="needs a secret key"):
        Catalog(store, artifacts).add(resolve_source(path), name="p", pii={"contact": "hash"})
