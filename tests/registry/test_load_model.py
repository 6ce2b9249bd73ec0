"""`loopml.load_model`: a stored model back, checked (sha256, then signature) first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.errors import ArtifactCorrupted, InvalidInput, NotFound, UntrustedArtifact
from loopml.registry import MODEL_ARTIFACT, dump_model, read_model
from loopml.registry.formats import MAGIC
from loopml.registry.signing import signing_key
from loopml.tracking import TrackingClient
from loopml.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.from_env(tmp_path / "ws", env={})


def _model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.train.model import TrainedModel

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    y = np.where(frame.x > 0.2, "late", "paid")
    classes = sorted(set(y))
    pipeline = Pipeline([("features", StandardScaler()), ("model", LogisticRegression())])
    pipeline.fit(frame, [classes.index(v) for v in y])
    return TrainedModel(pipeline, "binary", "status", ["x", "z"], classes, 0.5), frame


def _store(workspace: Workspace, blob: bytes, name: str = MODEL_ARTIFACT) -> str:
    client = TrackingClient.from_workspace(workspace)
    with client.start_run("train", project="p") as run:
        run.log_artifact(blob, name)
    client.close()
    return run.id


def test_a_stored_model_loads_by_run_id_prefix_and_predicts_in_the_targets_labels(workspace):
    model, frame = _model()
    run_id = _store(workspace, dump_model(model, key=signing_key(workspace)))
    loaded = loopml.load_model(run_id[:6], workspace=workspace)
    assert list(loaded.predict(frame)) == list(model.predict(frame))
    assert set(loaded.predict(frame)) == {"late", "paid"}
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert list(loaded.classes_) == ["late", "paid"]


def test_a_model_signed_with_another_secret_is_never_unpickled(workspace, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    signing_key(workspace)  # this workspace has its own secret
    run_id = _store(workspace, dump_model(Evil(), key=b"x" * 64))  # another workspace's key
    with pytest.raises(UntrustedArtifact, match="signature does not verify"):
        loopml.load_model(run_id, workspace=workspace)
    assert not marker.exists()


def test_an_altered_payload_fails_the_signature_even_with_a_fresh_sha256(workspace):
    model, _ = _model()
    blob = dump_model(model, key=signing_key(workspace))
    header, _, payload = blob[len(MAGIC):].partition(b"\n")
    other, _ = _model()
    other.threshold = 0.9  # a different object under the old header and signature
    import io

    buffer = io.BytesIO()
    joblib.dump(other, buffer)
    run_id = _store(workspace, MAGIC + header + b"\n" + buffer.getvalue())
    with pytest.raises(UntrustedArtifact):
        loopml.load_model(run_id, workspace=workspace)


def test_a_plain_pickle_is_refused(workspace):
    import io

    model, _ = _model()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run_id = _store(workspace, buffer.getvalue())
    with pytest.raises(UntrustedArtifact, match="not a model written by loopml"):
        loopml.load_model(run_id, workspace=workspace)


def test_an_unsigned_model_of_an_earlier_loopml_is_refused_with_the_reason(workspace):
    import io

    model, _ = _model()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run_id = _store(workspace, buffer.getvalue(), name="model.joblib")
    with pytest.raises(UntrustedArtifact, match="unsigned pickle .*retrain it"):
        loopml.load_model(run_id, workspace=workspace)


def test_bytes_changed_on_disk_fail_the_sha256_check_first(workspace):
    model, _ = _model()
    run_id = _store(workspace, dump_model(model, key=signing_key(workspace)))
    client = TrackingClient.from_workspace(workspace)
    record = client.store.artifacts.get(run_id, MODEL_ARTIFACT)
    client.close()
    path = Path(workspace.artifacts_uri, "objects", record.sha256[:2], record.sha256[2:])
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorrupted):
        loopml.load_model(run_id, workspace=workspace)


def test_a_model_from_another_format_version_is_a_clear_error():
    key = b"k" * 32
    blob = dump_model({"a": 1}, key=key)
    header_line, _, payload = blob[len(MAGIC):].partition(b"\n")
    header = json.loads(header_line)
    header.update(format=99, loopml="9.0.0")
    from loopml.registry.formats import _mac

    header["mac"] = _mac(key, header, payload)
    forged = MAGIC + json.dumps(header).encode() + b"\n" + payload
    with pytest.raises(InvalidInput, match="loopml 9.0.0 in model format 99"):
        read_model(forged, key=key)


def test_a_class_that_no_longer_exists_is_a_clear_error_not_a_traceback(tmp_path):
    module = tmp_path / "gone_module.py"
    module.write_text("class Thing:\n    pass\n")
    key = b"k" * 32
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import gone_module
        from loopml.registry import dump_model
        sys.stdout.buffer.write(dump_model(gone_module.Thing(), key={key!r}))
    """)
    blob = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    with pytest.raises(InvalidInput, match="cannot be loaded here.*gone_module"):
        read_model(blob, key=key)


def test_bad_references_are_clear_errors(workspace):
    run_id = _store(workspace, b"not a model", name="notes.txt")
    with pytest.raises(NotFound, match="stored no model"):
        loopml.load_model(run_id, workspace=workspace)
    with pytest.raises(NotFound):
        loopml.load_model("ffffffff", workspace=workspace)
    with pytest.raises(NotFound, match="no registered model named 'credit'"):
        loopml.load_model("credit@champion", workspace=workspace)
    with pytest.raises(InvalidInput):
        loopml.load_model("", workspace=workspace)


def test_a_mistyped_workspace_is_not_created(tmp_path):
    from loopml.errors import StoreUnavailable

    typo = tmp_path / "typo"
    with pytest.raises((StoreUnavailable, NotFound), match="no workspace at"):
        loopml.load_model("abcd", workspace=Workspace.from_env(typo, env={}))
    assert not typo.exists()


def test_a_damaged_signature_field_is_untrusted_not_a_traceback():
    blob = dump_model({"a": 1}, key=b"k" * 32)
    header_line, _, payload = blob[len(MAGIC):].partition(b"\n")
    header = json.loads(header_line)
    header["mac"] = "é"
    with pytest.raises(UntrustedArtifact, match="header is damaged"):
        read_model(MAGIC + json.dumps(header).encode() + b"\n" + payload, key=b"k" * 32)


def test_a_short_signing_key_is_refused(workspace, monkeypatch):
    monkeypatch.setenv("LOOPML_SIGNING_KEY", "a")
    with pytest.raises(InvalidInput, match="SIGNING_KEY is 1 bytes; a key needs at least 32"):
        signing_key(workspace)


def test_python_verbs_add_data_train_and_load_model(tmp_path):
    """The same verbs as the CLI, from Python: add_data, train, load_model."""
    from loopml.demo_data import make_credit

    data = tmp_path / "credit.csv"
    make_credit(600, seed=2).to_csv(data, index=False)
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    added = loopml.add_data(data, name="credit", project="risk", target="default",
                            pii={"email": "hash"}, workspace=workspace)
    assert added.version.ref == "credit@1" and added.created
    config = tmp_path / "loopml.yaml"
    config.write_text(textwrap.dedent("""
        project: {name: risk}
        data: {dataset: credit, target: default}
        train: {candidates: [linear], trials: 2, n_jobs: 1, cv_folds: 3}
    """))
    outcome = loopml.train(config, workspace=workspace)
    assert callable(loopml.train)  # still the verb after the train package was imported
    model = loopml.load_model(outcome.run_id, workspace=workspace)
    frame = make_credit(50, seed=9)
    assert list(model.predict(frame)) == list(outcome.model.predict(frame))
