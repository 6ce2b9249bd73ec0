"""`loopml gc` after real crashes: it removes leftovers, never what is referenced or live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopml.errors import InvalidInput
from loopml.gc import collect, parse_age
from loopml.tracking import TrackingClient
from loopml.workspace import Workspace

# Writes one chunk of an artifact, says so, then hangs mid-write until killed.
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from loopml.artifacts import ArtifactStore

    def chunks():
        yield b"x" * (1 << 20)  # past the write buffer: on disk
        Path(sys.argv[2]).write_text("writing")
        time.sleep(600)
        yield b"never"

    ArtifactStore(sys.argv[1]).connect().put_chunks(chunks())
    """
)

# Ingests a CSV and hangs in the progress callback, its Parquet temp file open.
_INGEST = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from loopml.data import Catalog, resolve_source
    from loopml.workspace import Workspace

    def progress(rows, read_bytes):
        Path(sys.argv[2]).write_text("ingesting")
        time.sleep(600)

    catalog = Catalog.from_workspace(Workspace.from_env(sys.argv[1]))
    catalog.add(resolve_source(sys.argv[3]), name="big", progress=progress)
    """
)


def _env(tmp_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["TMPDIR"] = str(tmp_dir)  # the sweep must only ever see this test's temp folders
    return env


def _wait_for(marker: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        assert time.monotonic() < deadline, "the child never reached its write"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.from_env(tmp_path / "ws", env={})


def test_only_unreferenced_objects_are_removed(workspace, tmp_path):
    from loopml.data import Catalog, resolve_source

    client = TrackingClient.from_workspace(workspace)
    with client.start_run("keep", project="p") as keep:
        keep.log_artifact(b"shared", name="shared.bin")
        keep.log_artifact(b"kept", name="kept.bin")
    with client.start_run("drop", project="p") as drop:
        drop.log_artifact(b"shared", name="shared.bin")
        drop.log_artifact(b"only in the deleted run", name="gone.bin")
    client.delete_run(drop.id)
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    catalog = Catalog.from_workspace(workspace)
    version = catalog.add(resolve_source(csv), name="d").version
    orphan = client.artifacts.put_bytes(b"stored, then the writer died before recording it")
    gone = client.artifacts.put_bytes(b"only in the deleted run")
    everything = {p.parent.name + p.name for p in Path(client.artifacts.root, "objects")
                  .rglob("*") if p.is_file()}
    referenced = everything - {orphan.sha256, gone.sha256}
    assert len(referenced) == 5  # shared, kept, snapshot, profile, report

    young = collect(client.store, client.artifacts, temp_dir=tmp_path / "none")
    assert young.leftovers == [] and young.too_young == 2  # the default spares the last hour

    dry = collect(client.store, client.artifacts, older_than_s=0, temp_dir=tmp_path / "none")
    assert {p.path.parent.name + p.path.name for p in dry.leftovers} == {orphan.sha256,
                                                                         gone.sha256}
    assert not dry.deleted and client.artifacts.exists(orphan.sha256)

    done = collect(client.store, client.artifacts, older_than_s=0, temp_dir=tmp_path / "none",
                   delete=True)
    assert done.deleted and done.size == orphan.size + gone.size
    left = {p.parent.name + p.name for p in Path(client.artifacts.root, "objects").rglob("*")
            if p.is_file()}
    assert left == referenced
    assert client.load_artifact(keep.id, "shared.bin") == b"shared"  # sha256-checked read
    assert catalog.load(version).shape == (2, 2)
    client.close()


def test_part_file_of_a_killed_writer_is_removed_but_a_live_one_is_not(workspace, tmp_path):
    store, artifacts = workspace.open()
    marker = tmp_path / "writing"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, artifacts.root, str(marker)],
                              env=_env(tmp_path), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, writer)
        [part] = Path(artifacts.root, "tmp").glob("*.part")
        assert part.name.startswith(f"{writer.pid}-")
        live = collect(store, artifacts, older_than_s=0, temp_dir=tmp_path, delete=True)
        assert live.leftovers == [] and live.in_use == [part] and part.exists()
    finally:
        _kill(writer)
    fresh = collect(store, artifacts, older_than_s=3600, temp_dir=tmp_path, delete=True)
    assert fresh.leftovers == [] and fresh.too_young == 1 and part.exists()
    stale = collect(store, artifacts, older_than_s=0, temp_dir=tmp_path, delete=True)
    assert [(i.kind, i.path, i.size) for i in stale.leftovers] == [("temp file", part, 1 << 20)]
    assert not part.exists()


def test_temp_folder_of_a_killed_ingest_is_removed_but_a_live_one_is_not(workspace, tmp_path):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    csv = tmp_path / "big.csv"
    csv.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(1000)))
    store, artifacts = workspace.open()
    marker = tmp_path / "ingesting"
    ingest = subprocess.Popen(
        [sys.executable, "-c", _INGEST, str(workspace.home), str(marker), str(csv)],
        env=_env(temp_dir), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, ingest)
        [folder] = temp_dir.glob("loopml-ingest-*")
        live = collect(store, artifacts, older_than_s=0, temp_dir=temp_dir, delete=True)
        assert live.in_use == [folder] and live.leftovers == [] and folder.exists()
    finally:
        _kill(ingest)
    assert folder.exists()  # SIGKILL: nothing cleaned up after itself
    unrelated = temp_dir / "not-loopml-ingest-x"
    unrelated.mkdir()
    assert collect(store, artifacts, temp_dir=temp_dir, delete=True).too_young == 1
    stale = collect(store, artifacts, older_than_s=0, temp_dir=temp_dir, delete=True)
    assert [(i.kind, i.path) for i in stale.leftovers] == [("temp folder", folder)]
    assert stale.size > 0 and not folder.exists() and unrelated.exists()


def test_cli_is_a_dry_run_unless_yes(workspace, tmp_path):
    store, artifacts = workspace.open()
    orphan = artifacts.put_bytes(b"orphan")
    env = _env(tmp_path)

    def gc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loopml", "gc", "--home",
                               str(workspace.home), *args], env=env, capture_output=True,
                              text=True, timeout=120)

    kept = gc()
    assert kept.returncode == 0, kept.stderr
    assert "would remove 0 unreferenced object(s)" in kept.stdout and "spared 0 in use and 1" \
        in kept.stdout
    young = gc("--older-than", "59s", "--yes")
    assert young.returncode == 2 and young.stderr.strip().splitlines() == [
        "loopml: error: --older-than 59s is under the minimum of 60 s: younger files may "
        "belong to a running command; give 60s or more, or set LOOPML_GC_MIN_AGE=0 when no "
        "loopml command is running"]
    assert artifacts.exists(orphan.sha256)
    env["LOOPML_GC_MIN_AGE"] = "0"  # the documented override: nothing else runs here
    dry = gc("--older-than", "0s")
    assert "would remove 1 unreferenced object(s)" in dry.stdout and "dry run" in dry.stdout
    assert artifacts.exists(orphan.sha256)
    done = gc("--older-than", "0", "--yes")
    assert done.returncode == 0 and "removed 1 unreferenced object(s)" in done.stdout
    assert not artifacts.exists(orphan.sha256)
    bad = gc("--older-than", "soon")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "loopml: error: --older-than 'soon' is not an age: give a number of seconds or one "
        "with a unit, like 90s, 30m, 1h or 2d"]


@pytest.mark.parametrize(("text", "seconds"), [("60", 60), ("90", 90), ("90s", 90),
                                               ("30m", 1800), ("1.5h", 5400), ("2d", 172800)])
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds
    assert parse_age("0", minimum_s=0) == 0


def test_parse_age_refuses_less_than_a_minute_unless_overridden(monkeypatch):
    monkeypatch.delenv("LOOPML_GC_MIN_AGE", raising=False)
    for text in ("0", "59", "0.5m"):
        with pytest.raises(InvalidInput, match="under the minimum of 60 s"):
            parse_age(text)
    monkeypatch.setenv("LOOPML_GC_MIN_AGE", "0")
    assert parse_age("0") == 0
    monkeypatch.setenv("LOOPML_GC_MIN_AGE", "2m")
    with pytest.raises(InvalidInput, match="minimum of 120 s"):
        parse_age("90s")


_PROJECT = """\
project: {{name: risk}}
data: {{dataset: credit, source: {csv}, target: default, pii: {{email: hash}}}}
train: {{candidates: [linear], trials: null, time_budget_s: {budget}, n_jobs: 1, cv_folds: 3}}
"""


def test_temp_folder_of_a_live_search_is_kept_for_the_whole_command(workspace, tmp_path):
    from loopml.demo_data import make_credit

    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    csv = tmp_path / "credit.csv"
    make_credit(600, seed=3).to_csv(csv, index=False)
    config = tmp_path / "loopml.yaml"
    config.write_text(_PROJECT.format(csv=csv, budget=15))  # of the whole command: ~8 s of search
    train = subprocess.Popen([sys.executable, "-m", "loopml", "train", "--config", str(config),
                              "--home", str(workspace.home)], env=_env(temp_dir),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(temp_dir.glob("loopml-search-*/study.journal")):
            assert train.poll() is None, train.communicate()[1]
            assert time.monotonic() < deadline, "the search never started"
            time.sleep(0.05)
        [folder] = temp_dir.glob("loopml-search-*")
        assert folder.name.startswith(f"loopml-search-{train.pid}-")
        store, artifacts = workspace.open()
        # Between its trials the search holds no file open in the folder: its pid keeps it.
        for _ in range(3):
            live = collect(store, artifacts, older_than_s=0, temp_dir=temp_dir, delete=True)
            assert folder in live.in_use and live.count("temp folder") == 0
            assert folder.exists()
            time.sleep(0.5)
        out, err = train.communicate(timeout=180)
        assert train.returncode == 0, err  # every trial still there to summarize
    finally:
        if train.poll() is None:
            _kill(train)
    assert not folder.exists()  # the search cleaned up after itself
    left = temp_dir / f"loopml-search-{train.pid}-left"  # its pid now dead, as after SIGKILL
    mine = temp_dir / f"loopml-search-{os.getpid()}-mine"
    left.mkdir()
    mine.mkdir()
    stale = collect(store, artifacts, older_than_s=0, temp_dir=temp_dir, delete=True)
    assert [(i.kind, i.path) for i in stale.leftovers] == [("temp folder", left)]
    assert stale.in_use == [mine] and not left.exists() and mine.exists()


def test_trashed_objects_are_readable_and_put_back_if_recorded(workspace, tmp_path):
    client = TrackingClient.from_workspace(workspace)
    with client.start_run("keep", project="p") as run:
        run.log_artifact(b"recorded", name="kept.bin")
    kept = client.artifacts.put_bytes(b"recorded")
    orphan = client.artifacts.put_bytes(b"never recorded")
    objects, trash = Path(client.artifacts.root, "objects"), Path(client.artifacts.root, "trash")
    trash.mkdir()
    # What a gc killed between moving objects to its trash and deleting them leaves.
    for blob in (kept, orphan):
        os.rename(objects / blob.sha256[:2] / blob.sha256[2:], trash / blob.sha256)
    assert client.load_artifact(run.id, "kept.bin") == b"recorded"  # read from the trash
    dry = collect(client.store, client.artifacts, older_than_s=0, temp_dir=tmp_path / "none")
    assert [i.path for i in dry.leftovers] == [trash / orphan.sha256]
    assert (trash / kept.sha256).exists()  # a dry run changes nothing
    done = collect(client.store, client.artifacts, older_than_s=0, temp_dir=tmp_path / "none",
                   delete=True)
    assert [i.path for i in done.leftovers] == [trash / orphan.sha256]
    assert list(trash.iterdir()) == []
    assert (objects / kept.sha256[:2] / kept.sha256[2:]).exists()
    assert client.load_artifact(run.id, "kept.bin") == b"recorded"
    assert not client.artifacts.exists(orphan.sha256)
    client.close()
