"""Logging a folder: all or nothing, and symbolic links are refused, never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopml.errors import InvalidInput


def _objects(client) -> list[Path]:
    return sorted(p for p in Path(client.artifacts.root, "objects").rglob("*") if p.is_file())


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    (folder / "z.txt").write_text("z")
    return folder


def test_folder_is_recorded_whole(client, tmp_path):
    folder = _folder(tmp_path)
    with client.start_run("r", project="p") as run:
        records = run.log_artifact(folder)
    names = [r.name for r in client.run_detail(run.id).artifacts]
    assert names == ["model/a.txt", "model/sub/b.txt", "model/z.txt"]
    assert [r.name for r in records] == names
    assert client.load_artifact(run.id, "model/sub/b.txt") == b"b"


def test_a_bad_name_in_the_middle_records_nothing(client, tmp_path):
    folder = _folder(tmp_path)
    (folder / "m\\n.txt").write_text("backslash is legal on Linux, not in an artifact name")
    with client.start_run("r", project="p") as run:
        with pytest.raises(InvalidInput, match=r"artifact name 'model/m\\\\n.txt'"):
            run.log_artifact(folder)
        assert client.run_detail(run.id).artifacts == []
        assert _objects(client) == []  # names are checked before any byte is stored


def test_record_many_is_one_transaction(store, artifacts):
    from loopml.store.artifact_index import ArtifactRow

    run = store.runs.create(project="p", name="r")
    blob = artifacts.put_bytes(b"x")
    rows = [ArtifactRow("a.bin", blob.sha256, 1, "application/octet-stream"),
            ArtifactRow("../escape", blob.sha256, 1, "application/octet-stream")]
    with pytest.raises(InvalidInput, match="'../escape' is not allowed"):
        store.artifacts.record_many(run.id, rows)
    assert store.artifacts.list(run.id) == []


@pytest.mark.parametrize("kind", ["outside file", "system file", "dangling", "folder"])
def test_symbolic_links_in_a_folder_are_refused(client, tmp_path, kind):
    folder = _folder(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the artifact store")
    target = {"outside file": secret, "system file": Path("/etc/hostname"),
              "dangling": tmp_path / "missing.txt", "folder": tmp_path}[kind]
    os.symlink(target, folder / "sub" / "link")
    with client.start_run("r", project="p") as run:
        with pytest.raises(InvalidInput, match=rf"symbolic links \(sub/link -> {target}\)"):
            run.log_artifact(folder)
        assert client.run_detail(run.id).artifacts == []
    assert _objects(client) == []
    assert not any(b"not for the artifact store" in p.read_bytes() for p in _objects(client))


def test_put_file_without_following_refuses_a_link(artifacts, tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("real")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with pytest.raises(InvalidInput, match="link.txt: it is a symbolic link"):
        artifacts.put_file(link, follow_symlinks=False)
    assert artifacts.put_file(link).size == 4  # a path the user names directly is read
