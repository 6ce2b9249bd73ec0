"""Several processes adding versions of one dataset at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pytest

from loopml.artifacts import ArtifactStore
from loopml.data import Catalog, resolve_source
from loopml.store import Store

PROCESSES = 4


def _ingest(store_url: str, artifacts_uri: str, csv: str, start_at: float) -> dict:
    """One process: `data add` of ``csv`` to dataset ``shared``; report what it got."""
    catalog = Catalog(Store(store_url).connect(), ArtifactStore(artifacts_uri).connect(),
                      pii_key=b"k" * 32)
    source = resolve_source(csv)
    while time.time() < start_at:
        time.sleep(0.005)
    result = catalog.add(source, name="shared", project="p")
    return {"csv": csv, "seq": result.version.seq, "id": result.version.id,
            "hash": result.version.content_hash, "created": result.created,
            "contract": result.contract_created}


def _add_versions(store_url: str, worker: int, start_at: float) -> list[tuple[str, int]]:
    """One process: record 12 versions straight into the store, half shared with others."""
    store = Store(store_url).connect()
    while time.time() < start_at:
        time.sleep(0.005)
    out = []
    for i in range(12):
        content = f"shared-{i}" if i % 2 else f"own-{worker}-{i}"
        version, _ = store.datasets.add_version(
            project="p", name="hammered", content_hash=content.ljust(64, "_"), num_rows=1,
            num_columns=1, schema=[], source="test", snapshot_sha256="0" * 64, snapshot_size=1,
            profile_sha256="0" * 64, report_sha256=None, pii={}, contract_yaml="x: 1",
        )
        out.append((content, version.seq))
    return out


@pytest.mark.slow
def test_four_processes_ingest_one_dataset_and_every_version_is_accounted_for(
        store_url, tmp_path):
    Store(store_url).connect()  # create the schema once, as the first user would
    files = []
    for index, rows in enumerate((40, 50, 60, 60)):  # the last two are the same content
        path = tmp_path / f"part-{index}.csv"
        pd.DataFrame({"x": range(rows), "y": [i % 3 for i in range(rows)]}).to_csv(
            path, index=False)
        files.append(str(path))
    start_at = time.time() + 4.0  # after every interpreter has started
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
        reports = [f.result(timeout=180) for f in [
            pool.submit(_ingest, store_url, str(tmp_path / "art"), csv, start_at)
            for csv in files]]

    catalog = Catalog(Store(store_url).connect(), ArtifactStore(str(tmp_path / "art")).connect())
    versions = catalog.list("shared", project="p")
    assert sorted(v.seq for v in versions) == [1, 2, 3]
    assert len({v.content_hash for v in versions}) == 3
    by_hash = {v.content_hash: v for v in versions}
    for report in reports:  # each process got the version that holds its content
        assert by_hash[report["hash"]].id == report["id"]
        assert by_hash[report["hash"]].seq == report["seq"]
    same = [r for r in reports if r["csv"] in files[2:]]
    assert same[0]["id"] == same[1]["id"]  # identical content: one version, no duplicate
    assert sorted(r["created"] for r in same) == [False, True]
    assert all(r["created"] for r in reports if r["csv"] in files[:2])
    assert len(catalog.load(by_hash[same[0]["hash"]])) == 60
    assert sum(r["contract"] for r in reports) == 1  # one inferred contract is kept, and said so
    assert catalog.contract("shared", project="p").dataset == "shared"


@pytest.mark.slow
def test_concurrent_add_version_never_repeats_a_number(store_url):
    Store(store_url).connect()
    start_at = time.time() + 4.0
    with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool:
        results = [f.result(timeout=180) for f in [
            pool.submit(_add_versions, store_url, worker, start_at)
            for worker in range(PROCESSES)]]

    versions = Store(store_url).connect().datasets.list_versions("hammered", project="p")
    contents = {content for result in results for content, _ in result}
    # 4 × 6 own contents + 6 shared ones, numbered 1..30 without gaps or repeats
    assert len(contents) == PROCESSES * 6 + 6
    assert sorted(v.seq for v in versions) == list(range(1, len(contents) + 1))
    seq_of = {v.content_hash.rstrip("_"): v.seq for v in versions}
    for result in results:  # every caller was told the number its content really has
        for content, seq in result:
            assert seq_of[content] == seq


def test_report_path_names_the_project(catalog, tmp_path: Path, credit_csv: Path):
    a = catalog.add(resolve_source(credit_csv), name="shared", project="teamA").version
    other = tmp_path / "other.csv"
    pd.read_csv(credit_csv).head(100).to_csv(other, index=False)
    b = catalog.add(resolve_source(other), name="shared", project="teamB").version
    assert (a.seq, b.seq) == (1, 1)
    folder = tmp_path / "reports"
    path_a = catalog.write_report(a, folder)
    path_b = catalog.write_report(b, folder)
    assert path_a != path_b
    assert path_a == folder / "teamA" / "data-shared-1.html"
    assert "600" in path_a.read_text().replace(",", "")  # teamA's rows, not overwritten
    assert path_b.read_text() == catalog.report_html(b) != catalog.report_html(a)
    odd = catalog.add(resolve_source(other), name="shared", project="../team B").version
    path_odd = catalog.write_report(odd, folder)
    assert path_odd.parent.parent == folder and "team_B-" in path_odd.parent.name
