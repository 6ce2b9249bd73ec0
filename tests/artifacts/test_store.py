"""Content-addressed artifacts on every backend: local folder and an fsspec filesystem."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore
from loopml.artifacts.store import object_key
from loopml.errors import ArtifactCorrupted, InvalidInput, NotFound


@pytest.fixture(params=["local", "memory"])
def blobs(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts")).connect()
    return ArtifactStore(f"memory://loopml-test-{uuid.uuid4().hex}").connect()


def test_bytes_round_trip_under_their_sha256(blobs):
    data = b"model weights" * 1000
    blob = blobs.put_bytes(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.size == len(data)
    assert blobs.exists(blob.sha256)
    assert blobs.get_bytes(blob.sha256) == data


def test_same_content_is_stored_once(blobs, tmp_path):
    first = blobs.put_bytes(b"same")
    path = tmp_path / "same.txt"
    path.write_bytes(b"same")
    assert blobs.put_file(path) == first


def test_large_file_streams_and_verifies(blobs, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 20_000)  # 5 MB, several chunks
    blob = blobs.put_file(source)
    out = blobs.get_to_path(blob.sha256, tmp_path / "out" / "big.bin")
    assert out.read_bytes() == source.read_bytes()


def test_missing_blob_is_not_found(blobs):
    with pytest.raises(NotFound, match="missing from"):
        blobs.get_bytes("0" * 64)


@pytest.mark.parametrize("address", ["../../etc/passwd", "A" * 64, "abc", "0" * 63 + "/"])
def test_only_sha256_addresses_reach_the_filesystem(blobs, address):
    with pytest.raises(InvalidInput, match="not a sha256 address"):
        blobs.get_bytes(address)


def test_tampered_file_fails_naming_the_sha256_mismatch(tmp_path):
    blobs = ArtifactStore(str(tmp_path / "artifacts")).connect()
    blob = blobs.put_bytes(b"original content")
    path = Path(blobs.root, *object_key(blob.sha256).split("/"))
    path.write_bytes(b"tampered content")
    tampered = hashlib.sha256(b"tampered content").hexdigest()
    with pytest.raises(ArtifactCorrupted, match=f"expected {blob.sha256}.*hash to {tampered}"):
        blobs.get_bytes(blob.sha256)
    dest = tmp_path / "restored.txt"
    with pytest.raises(ArtifactCorrupted):
        blobs.get_to_path(blob.sha256, dest)
    assert not dest.exists() and list(tmp_path.glob(".restored.txt*")) == []


def test_failed_write_leaves_nothing_behind(tmp_path):
    blobs = ArtifactStore(str(tmp_path / "artifacts")).connect()

    def chunks():
        yield b"first half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        blobs.put_chunks(chunks())
    assert list(Path(blobs.root, "tmp").iterdir()) == []
    assert [p for p in Path(blobs.root, "objects").rglob("*") if p.is_file()] == []


def test_unwritable_root_is_a_clear_error(tmp_path):
    from loopml.errors import StoreUnavailable

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="cannot use artifact folder"):
        ArtifactStore(str(blocker / "artifacts")).connect()
