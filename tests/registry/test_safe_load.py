"""Loading a registered model never runs bytes loopml did not write and sign.

The attacker of these tests can write the metadata store and the artifact folder, not the
workspace's signing key: they swap the bytes of a version and fix up its recorded sha256.
Every payload here creates a marker file when unpickled; the marker must not appear.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from registry_helpers import credit_project, train, workspace_at

import loopml
from loopml.artifacts import ArtifactStore
from loopml.errors import ArtifactCorrupted, UntrustedArtifact
from loopml.registry import dump_model
from loopml.registry.formats import MAGIC
from loopml.registry.registry import Registry
from loopml.registry.signing import signing_key
from loopml.train.runner import TrainOutcome
from loopml.workspace import Workspace


class Payload:
    """An object whose unpickling touches ``marker``: the stand-in for an attacker's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass
class Trained:
    home: Path
    outcome: TrainOutcome
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, credit_csv: Path) -> Trained:
    root = tmp_path_factory.mktemp("safe-load")
    outcome = train(credit_project(credit_csv), workspace_at(root / "ws"), project_dir=root)
    assert outcome.version.ref == "credit@1"
    from loopml.demo_data import make_credit

    return Trained(home=root / "ws", outcome=outcome, frame=make_credit(50, seed=8))


@pytest.fixture
def workspace(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A copy of the trained workspace (store, artifacts, signing key) this test may damage."""
    monkeypatch.delenv("LOOPML_SIGNING_KEY", raising=False)  # each workspace's own key file
    shutil.copytree(trained.home, tmp_path / "ws")
    return workspace_at(tmp_path / "ws")


def _object_path(workspace: Workspace, sha256: str) -> Path:
    return Path(workspace.artifacts_uri, "objects", sha256[:2], sha256[2:])


def _native_sha256(workspace: Workspace, ref: str = "credit@1") -> str:
    with Registry.open(workspace) as registry:
        return registry.get(ref).native_sha256


def _swap_version_bytes(workspace: Workspace, blob: bytes, version: int = 1) -> str:
    """Store ``blob`` and point ``credit@version`` at it, sha256 and size: the attack."""
    stored = ArtifactStore(workspace.artifacts_uri).connect().put_bytes(blob)
    database = workspace.home / "loopml.db"
    with sqlite3.connect(database) as conn:
        changed = conn.execute(
            "UPDATE model_versions SET native_sha256 = ?, native_size = ? WHERE version = ? "
            "AND model_id = (SELECT id FROM registered_models WHERE name = 'credit')",
            (stored.sha256, stored.size, version)).rowcount
    assert changed == 1
    assert _native_sha256(workspace, f"credit@{version}") == stored.sha256
    return stored.sha256


def _forged_envelope(payload_object: object, *, mac: str) -> bytes:
    """Return ``payload_object`` in a loopml envelope with a made-up signature."""
    buffer = io.BytesIO()
    joblib.dump(payload_object, buffer)
    header = {"format": 1, "loopml": loopml.__version__,
              "python": f"{sys.version_info.major}.{sys.version_info.minor}",
              "class": "loopml.train.model.TrainedModel", "mac": mac}
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + buffer.getvalue()


def _assert_payload_would_run(blob: bytes, marker: Path) -> None:
    """The control: the payload really runs once something unpickles it."""
    assert not marker.exists()
    payload = blob.partition(b"\n")[2].partition(b"\n")[2] if blob.startswith(MAGIC) else blob
    joblib.load(io.BytesIO(payload))
    assert marker.exists()


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any unpickling in the test fail loudly."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(joblib, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)


def test_the_untouched_copy_loads_and_predicts_like_the_trained_model(trained, workspace):
    model = loopml.load_model("credit@1", workspace=workspace)
    np.testing.assert_array_equal(model.predict_proba(trained.frame),
                                  trained.outcome.model.predict_proba(trained.frame))


# --- (a) bytes changed on disk ---------------------------------------------------------------


@pytest.mark.parametrize("where", [20, -5])  # in the signed header, in the pickle payload
def test_a_flipped_byte_in_the_stored_model_is_refused_before_unpickling(
        workspace, no_unpickling, where):
    path = _object_path(workspace, _native_sha256(workspace))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    for ref in ("credit@1", "credit"):
        with pytest.raises(ArtifactCorrupted):
            loopml.load_model(ref, workspace=workspace)
    with Registry.open(workspace) as registry, pytest.raises(ArtifactCorrupted):
        registry.load(registry.get("credit@1"))


# --- (b) the bytes swapped and the record fixed up -------------------------------------------


def test_a_swapped_plain_pickle_with_a_matching_sha256_never_runs(workspace, tmp_path):
    marker = tmp_path / "pwned-raw"
    blob = pickle.dumps(Payload(marker), protocol=4)
    _swap_version_bytes(workspace, blob)
    for ref in ("credit@1", "credit"):
        with pytest.raises(UntrustedArtifact, match="not a model written by loopml"):
            loopml.load_model(ref, workspace=workspace)
    with Registry.open(workspace) as registry, pytest.raises(UntrustedArtifact):
        registry.load(registry.get("credit@1"))
    assert not marker.exists()
    _assert_payload_would_run(blob, marker)


@pytest.mark.parametrize("mac", ["0" * 64, "forged-with-a-guess"])
def test_a_swapped_envelope_with_a_forged_signature_never_runs(workspace, tmp_path, mac):
    import hashlib
    import hmac

    marker = tmp_path / "pwned-envelope"
    if mac == "forged-with-a-guess":  # a well-formed signature made with a key not the workspace's
        mac = hmac.new(b"guess" * 8, b"anything", hashlib.sha256).hexdigest()
    blob = _forged_envelope(Payload(marker), mac=mac)
    _swap_version_bytes(workspace, blob)
    with pytest.raises(UntrustedArtifact, match="signature does not verify"):
        loopml.load_model("credit@1", workspace=workspace)
    with Registry.open(workspace) as registry, pytest.raises(UntrustedArtifact):
        registry.load(registry.get("credit@1"))
    assert not marker.exists()
    _assert_payload_would_run(blob, marker)


def test_a_swapped_model_signed_with_another_workspaces_key_never_runs(workspace, tmp_path):
    other = workspace_at(tmp_path / "other")
    other.home.mkdir()
    other_key = signing_key(other)
    assert other_key != signing_key(workspace, create=False)
    marker = tmp_path / "pwned-other-key"
    blob = dump_model(Payload(marker), key=other_key)
    _swap_version_bytes(workspace, blob)
    with pytest.raises(UntrustedArtifact, match="signature does not verify"):
        loopml.load_model("credit@1", workspace=workspace)
    assert not marker.exists()
    _assert_payload_would_run(blob, marker)


def test_trust_does_not_unpickle_an_unsigned_model_from_the_store(workspace, tmp_path):
    marker = tmp_path / "pwned-trusted"
    _swap_version_bytes(workspace, pickle.dumps(Payload(marker), protocol=4))
    with pytest.raises(UntrustedArtifact):
        loopml.load_model("credit@1", workspace=workspace, trust=True)
    assert not marker.exists()


# --- (c) trust=True for a file the user made -------------------------------------------------


@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_trust_loads_a_foreign_pickle_file_and_without_it_nothing_runs(
        trained, workspace, tmp_path, suffix):
    path = tmp_path / f"foreign{suffix}"
    joblib.dump(trained.outcome.model, path)
    with pytest.raises(UntrustedArtifact, match="not a model written by loopml"):
        loopml.load_model(str(path), workspace=workspace)
    model = loopml.load_model(str(path), workspace=workspace, trust=True)
    np.testing.assert_array_equal(model.predict_proba(trained.frame),
                                  trained.outcome.model.predict_proba(trained.frame))

    marker = tmp_path / "pwned-file"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps(Payload(marker), protocol=4))
    with pytest.raises(UntrustedArtifact):
        loopml.load_model(str(evil), workspace=workspace)
    assert not marker.exists()


def test_a_model_file_signed_by_this_workspace_loads_without_trust(trained, workspace, tmp_path):
    path = tmp_path / "model.loopml"
    path.write_bytes(dump_model(trained.outcome.model, key=signing_key(workspace, create=False)))
    model = loopml.load_model(str(path), workspace=workspace)
    assert list(model.predict(trained.frame)) == list(trained.outcome.model.predict(trained.frame))


# --- (d) another workspace's key ---------------------------------------------------------------


def test_a_model_signed_with_another_workspaces_key_is_refused(trained, workspace, tmp_path):
    other = workspace_at(tmp_path / "other")
    other.home.mkdir()
    path = tmp_path / "theirs.loopml"
    path.write_bytes(dump_model(trained.outcome.model, key=signing_key(other)))
    with pytest.raises(UntrustedArtifact, match="signature does not verify"):
        loopml.load_model(str(path), workspace=workspace)
    # the workspace that signed it loads it
    model = loopml.load_model(str(path), workspace=other)
    assert list(model.predict(trained.frame)) == list(trained.outcome.model.predict(trained.frame))
    # the same bytes put in the store as this workspace's version are refused too
    _swap_version_bytes(workspace, path.read_bytes())
    with pytest.raises(UntrustedArtifact, match="signature does not verify"):
        loopml.load_model("credit@1", workspace=workspace)


def test_a_workspace_copied_without_its_signing_key_loads_nothing(trained, workspace):
    (workspace.home / "signing.key").unlink()
    with pytest.raises(Exception, match="signing key") as raised:
        loopml.load_model("credit@1", workspace=workspace)
    assert type(raised.value).__module__ == "loopml.errors"
    assert not (workspace.home / "signing.key").exists()  # reading never makes a new key
