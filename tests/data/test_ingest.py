"""Ingest: versions by content, every source kind, and bad files refused with nothing stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from loopml.data import resolve_source
from loopml.data import sources as sources_module
from loopml.errors import InvalidInput, NotFound


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _blobs(catalog) -> list[Path]:
    return [p for p in Path(catalog.artifacts.root, "objects").rglob("*") if p.is_file()]


def test_add_snapshots_profiles_and_versions(catalog, credit_csv, credit_frame):
    result = catalog.add(resolve_source(credit_csv), name="credit", project="risk",
                         target="default")
    version = result.version
    assert result.created and result.contract_created and version.ref == "credit@1"
    assert (version.num_rows, version.num_columns) == (600, 7)
    assert len(version.content_hash) == 64
    loaded = catalog.load("credit@1")
    pd.testing.assert_frame_equal(loaded, credit_frame, check_dtype=False)
    assert catalog.get("credit") == version == catalog.get(f"credit@{version.content_hash[:8]}")
    assert catalog.profile(version)["num_rows"] == 600
    assert "<html>" in catalog.report_html(version) and "data:image/png;base64" in \
        catalog.report_html(version)


def test_adding_the_same_content_twice_gives_the_same_version(catalog, credit_csv):
    first = catalog.add(resolve_source(credit_csv), name="credit")
    blobs = _blobs(catalog)
    second = catalog.add(resolve_source(credit_csv), name="credit")
    assert not second.created and second.version == first.version
    assert _blobs(catalog) == blobs  # nothing stored again
    assert [v.seq for v in catalog.list("credit")] == [1]


def test_csv_and_parquet_with_the_same_content_share_a_version(catalog, credit_csv, tmp_path):
    frame = pd.read_csv(credit_csv, parse_dates=["opened"])
    frame["opened"] = frame["opened"].astype("datetime64[s]")
    frame.to_parquet(tmp_path / "credit.parquet", index=False)
    from_csv = catalog.add(resolve_source(credit_csv), name="credit").version
    from_parquet = catalog.add(resolve_source(tmp_path / "credit.parquet"), name="credit")
    assert not from_parquet.created
    assert from_parquet.version.content_hash == from_csv.content_hash


def test_reordered_rows_are_a_new_version(catalog, credit_frame, tmp_path):
    credit_frame.to_csv(tmp_path / "a.csv", index=False)
    credit_frame.iloc[::-1].to_csv(tmp_path / "b.csv", index=False)
    first = catalog.add(resolve_source(tmp_path / "a.csv"), name="credit").version
    second = catalog.add(resolve_source(tmp_path / "b.csv"), name="credit").version
    assert first.content_hash != second.content_hash and second.seq == 2


def test_hash_does_not_depend_on_how_the_file_is_cut_into_batches(
    catalog, credit_csv, monkeypatch
):
    whole = catalog.add(resolve_source(credit_csv), name="whole").version
    monkeypatch.setattr(sources_module, "BLOCK_BYTES", 4096)  # ~10 batches
    pieces = catalog.add(resolve_source(credit_csv), name="pieces").version
    assert pieces.content_hash == whole.content_hash


def test_jsonl_parquet_folder_and_sql_sources(catalog, credit_frame, tmp_path):
    frame = credit_frame.drop(columns=["opened"])
    frame.to_json(tmp_path / "credit.jsonl", orient="records", lines=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:300].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[300:].to_parquet(folder / "part-1.parquet", index=False)
    with sqlite3.connect(tmp_path / "src.db") as conn:
        frame.to_sql("customers", conn, index=False)
    versions = [
        catalog.add(resolve_source(tmp_path / "credit.jsonl"), name="c").version,
        catalog.add(resolve_source(folder), name="c").version,
        catalog.add(resolve_source(sql="select * from customers order by customer_id",
                                   url=f"sqlite:///{tmp_path / 'src.db'}"), name="c").version,
    ]
    assert len({v.content_hash for v in versions}) == 1  # same columns, types and rows
    assert [v.seq for v in versions] == [1, 1, 1]  # the first source stays on record
    assert versions[2].source.startswith("jsonl:")
    pd.testing.assert_frame_equal(catalog.load("c"), frame, check_dtype=False)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("ragged.csv", "a,b\n1,2\n3,4,5\n", "Expected 2 columns, got 3"),
        ("quoting.csv", 'a,b\n1,"unterminated\n2,3\n', "unterminated quote"),
        ("empty.csv", "", "the file is empty"),
        ("header.csv", "a,b,c\n", "a header but no rows"),
        ("mixed.csv", "a,b\n1,x\n2,y\nn/a,z\n4,w\n", "column 'a' mixes numbers with text"),
        ("latin1.csv", "name,city\nJosé,Zürich\n".encode("latin-1"), "not valid UTF-8"),
        ("dupes.csv", "a,b,a\n1,2,3\n", "column name 'a' appears more than once"),
        ("noname.csv", "a,,c\n1,2,3\n", "column 2 has an empty name"),
        ("empty.jsonl", "", "the file is empty"),
        ("bad.jsonl", '{"a": 1}\n{"a": \n', "bad.jsonl"),
        ("data.xlsx", "x", "cannot tell the format"),
    ],
)
def test_bad_files_are_clear_errors_and_store_nothing(catalog, tmp_path, name, content, match):
    path = write(tmp_path, name, content)
    with pytest.raises(InvalidInput, match=match) as info:
        catalog.add(resolve_source(path), name="bad")
    assert str(path.name) in str(info.value) or "format" in str(info.value)
    with pytest.raises(NotFound):
        catalog.get("bad")
    assert _blobs(catalog) == []


def test_type_change_in_a_later_block_is_a_clear_error(catalog, tmp_path, monkeypatch):
    rows = "".join(f"{i},{i * 2}\n" for i in range(2000)) + "n/a,1\n"
    path = write(tmp_path, "late.csv", "a,b\n" + rows)
    monkeypatch.setattr(sources_module, "BLOCK_BYTES", 2048)
    with pytest.raises(InvalidInput, match=r"late.csv: .*'n/a'.*--null-values"):
        catalog.add(resolve_source(path), name="late")
    with pytest.raises(NotFound):
        catalog.get("late")


def test_declared_null_markers_make_a_mixed_column_numeric(catalog, tmp_path):
    path = write(tmp_path, "mixed.csv", "a,b\n1,x\n2,y\nn/a,z\n4,w\n")
    version = catalog.add(resolve_source(path, null_values=("", "n/a")), name="m").version
    assert version.schema[0] == {"name": "a", "type": "int64"}
    assert catalog.profile(version)["columns"]["a"]["missing"] == 1


def test_missing_target_column_is_a_clear_error(catalog, credit_csv):
    with pytest.raises(InvalidInput, match="target column 'churn' is not in the data"):
        catalog.add(resolve_source(credit_csv), name="credit", target="churn")
    with pytest.raises(NotFound):
        catalog.get("credit")


def test_sql_source_errors_name_the_source(catalog, tmp_path):
    with pytest.raises(InvalidInput, match="no such table: nope"):
        catalog.add(resolve_source(sql="select * from nope", url=f"sqlite:///{tmp_path}/x.db"),
                    name="s")
    with pytest.raises(InvalidInput, match="needs both"):
        resolve_source(sql="select 1")


def test_lineage_records_which_runs_used_a_version(catalog, credit_csv, client):
    version = catalog.add(resolve_source(credit_csv), name="credit").version
    with client.start_run("train", project="default") as run:
        catalog.log_input(run.id, "credit@1", role="train")
        catalog.log_input(run.id, "credit@1", role="train")  # once is enough
    assert catalog.users(version) == [(run.id, "train", "train")]
    assert [(v.ref, role) for v, role in catalog.store.datasets.inputs_of(run.id)] == [
        ("credit@1", "train")
    ]


def test_codes_that_end_in_digits_are_text_not_mixed(catalog, tmp_path):
    path = write(tmp_path, "sku.csv", "sku,n\nSKU1,1\nSKU2,2\nSKU3,3\nother,4\n")
    version = catalog.add(resolve_source(path), name="sku").version
    assert version.schema[0] == {"name": "sku", "type": "string"}


@pytest.mark.parametrize("name", ["sales/2024", "../x", "", "a b", "-x"])
def test_dataset_names_are_checked_before_any_work(catalog, credit_csv, name):
    with pytest.raises(InvalidInput, match="dataset name"):
        catalog.add(resolve_source(credit_csv), name=name)
    assert _blobs(catalog) == []
