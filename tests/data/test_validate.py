"""Validation against a contract: every violation reported with counts and examples."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.data import resolve_source
from loopml.data.contract import from_yaml, to_yaml
from loopml.errors import InvalidInput


@pytest.fixture
def added(catalog, credit_csv):
    return catalog.add(resolve_source(credit_csv), name="credit", target="default").version


def test_inferred_contract(catalog, added, credit_frame):
    contract = catalog.contract("credit")
    columns = contract.columns
    assert contract.target == "default"
    assert columns["customer_id"].unique and columns["customer_id"].type == "integer"
    assert (columns["age"].min, columns["age"].max) == (credit_frame.age.min(),
                                                        credit_frame.age.max())
    assert columns["city"].allowed == sorted(credit_frame.city.unique())
    assert columns["income"].type == "number" and columns["income"].allowed is None
    assert columns["opened"].type == "datetime"
    assert not any(rule.nullable for rule in columns.values())
    assert from_yaml(to_yaml(contract), origin="roundtrip") == contract


def test_clean_data_passes(catalog, added, credit_csv):
    report = catalog.validate(resolve_source(credit_csv), against="credit")
    assert report.passed and report.violations == [] and report.num_rows == 600


def test_every_violation_is_reported(catalog, added, credit_frame, tmp_path):
    bad = credit_frame.astype({"age": object, "income": object})
    bad.loc[[3, 9], "age"] = "n/a"        # text in an integer column
    bad.loc[4, "age"] = 130                # above the observed maximum
    bad.loc[5, "income"] = ""              # missing where never missing
    bad.loc[[6, 7], "city"] = "Berlin"     # unknown category
    bad.loc[8, "customer_id"] = bad.loc[9, "customer_id"]  # duplicate id
    bad = bad.drop(columns=["default"])    # target gone
    bad["extra"] = 1
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    report = catalog.validate(resolve_source(path), against="credit")
    found = {(v.column, v.rule): (v.rows, v.examples) for v in report.violations}
    assert not report.passed
    assert found[("age", "type")] == (2, ["n/a"])
    assert found[("age", "max")] == (1, ["130"])
    assert found[("income", "nullable")][0] == 1
    assert found[("city", "allowed")] == (2, ["Berlin"])
    assert found[("customer_id", "unique")][0] == 1
    assert found[("default", "missing_column")][0] == 600
    extra = next(v for v in report.violations if v.column == "extra")
    assert extra.severity == "warning"
    assert report.to_json()["passed"] is False


def test_mixed_types_in_a_later_block_are_reported_not_crashed(catalog, added, credit_frame,
                                                              tmp_path, monkeypatch):
    from loopml.data import sources

    bad = credit_frame.astype({"income": object})
    bad.loc[590, "income"] = "unknown"
    bad.to_csv(tmp_path / "late.csv", index=False)
    monkeypatch.setattr(sources, "BLOCK_BYTES", 4096)
    report = catalog.validate(resolve_source(tmp_path / "late.csv"), against="credit")
    assert [(v.column, v.rule, v.examples) for v in report.violations] == [
        ("income", "type", ["unknown"])
    ]


def test_edited_contract_is_checked_and_used(catalog, added, credit_csv, tmp_path):
    text = catalog.contract_yaml("credit").replace("max: 89", "max: 60")
    catalog.set_contract("credit", text, origin="edited.yaml")
    report = catalog.validate(resolve_source(credit_csv), against="credit")
    assert [(v.column, v.rule) for v in report.violations] == [("age", "max")]
    with pytest.raises(InvalidInput, match=r"edited.yaml: invalid contract: "
                                           r"columns.customer_id.type: Input should be .integer"):
        catalog.set_contract("credit", text.replace("type: integer", "type: int", 1),
                             origin="edited.yaml")
    with pytest.raises(InvalidInput, match="columns.age.maxx: Extra inputs"):
        catalog.set_contract("credit", text.replace("max: 60", "maxx: 60"), origin="e.yaml")


def test_parquet_with_wrong_types_is_reported(catalog, added, credit_frame, tmp_path):
    frame = credit_frame.copy()
    frame["age"] = frame["age"].astype(float) + 0.5
    frame.to_parquet(tmp_path / "f.parquet", index=False)
    report = catalog.validate(resolve_source(tmp_path / "f.parquet"), against="credit")
    rules = {(v.column, v.rule) for v in report.violations}
    assert ("age", "type") in rules


def test_missing_file_and_unknown_dataset(catalog, added, credit_csv):
    from loopml.errors import NotFound

    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        catalog.validate(resolve_source(credit_csv), against="nope")
    with pytest.raises(InvalidInput, match="no such file"):
        resolve_source("/no/such.csv")
    assert pd.read_csv(credit_csv).shape == (600, 7)
