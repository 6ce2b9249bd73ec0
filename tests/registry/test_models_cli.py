"""`loopml models export|bundle|import|evaluate|promote` through the real command."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from registry_helpers import credit_project, train, write_credit

import loopml
from loopml.workspace import Workspace
from loopml_cli import run_loopml

NUMBERS = ["age", "income", "debt", "years_at_address"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, object]:
    """A workspace with credit@1 registered as model `credit` version 1; the CSV; the outcome."""
    root = tmp_path_factory.mktemp("models-cli")
    source = write_credit(root / "credit.csv", rows=600)
    home = root / "ws"
    outcome = train(credit_project(source), Workspace.from_env(home, env={}), project_dir=root)
    return home, source, outcome


def _json(result) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_export_onnx_records_parity_profile_and_flavour_and_loads_as_onnx(trained, tmp_path):
    home, source, outcome = trained
    out = tmp_path / "m.onnx"
    shown = _json(run_loopml("models", "export", "credit@1", "--out", str(out), "--json",
                             home=home))
    export = shown["export"]
    assert export["parity"]["passed"] and export["parity"]["label_mismatches"] == 0
    assert export["profile"]["onnx"]["single_row_p50_us"] > 0
    assert shown["flavour"] == export["flavour"] and out.stat().st_size > 0
    frame = pd.read_csv(source).head(200)
    onnx_model = loopml.load_model("credit@1", workspace=Workspace.from_env(home, env={}),
                                   flavour="onnx")
    assert (onnx_model.predict(frame) == outcome.model.predict(frame)).all()
    np.testing.assert_allclose(onnx_model.predict_proba(frame),
                               outcome.model.predict_proba(frame), atol=1e-4)
    again = run_loopml("models", "export", "credit@1", "--out", str(out), home=home)
    assert again.returncode == 2 and "exists" in again.stderr  # not overwritten silently


def test_skops_export_loads_without_pickle_and_predicts_the_same(trained, tmp_path):
    import skops.io as sio

    home, source, outcome = trained
    out = tmp_path / "m.skops"
    result = run_loopml("models", "export", "credit@1", "--format", "skops", "--out", str(out),
                        home=home)
    assert result.returncode == 0, result.stderr
    untrusted = sio.get_untrusted_types(file=out)
    assert "loopml.train.model.TrainedModel" in untrusted
    model = sio.load(out, trusted=untrusted)
    frame = pd.read_csv(source).head(100)
    assert (model.predict(frame) == outcome.model.predict(frame)).all()
    bad = run_loopml("models", "export", "credit@1", "--format", "pickle", home=home)
    assert bad.returncode == 2 and "expected one of onnx, skops" in bad.stderr


def test_bundle_writes_the_four_files(trained, tmp_path):
    home, _, _ = trained
    out = tmp_path / "credit.zip"
    result = run_loopml("models", "bundle", "credit@1", str(out), home=home)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["README.md", "model.onnx", "predict.py",
                                              "signature.json"]
        signature = json.loads(archive.read("signature.json"))
    assert [c["name"] for c in signature["columns"]] == outcome_columns(trained)


def outcome_columns(trained) -> list[str]:
    return list(trained[2].model.input_columns)


def _torch_logistic(frame: pd.DataFrame, y: np.ndarray, path: Path) -> object:
    """Export a torch network equal to a fitted logistic regression; return the regression."""
    if os.environ.get("LOOPML_REQUIRE_TORCH") != "1":
        pytest.importorskip("torch")
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    reference = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[NUMBERS], y)
    scaler, logistic = reference[0], reference[1]
    layer = torch.nn.Linear(len(NUMBERS), 1)
    with torch.no_grad():  # the scaling folded into the weights: one linear layer, one logit
        weight = logistic.coef_[0] / scaler.scale_
        layer.weight.copy_(torch.tensor(weight[None, :], dtype=torch.float32))
        layer.bias.copy_(torch.tensor([logistic.intercept_[0] - weight @ scaler.mean_],
                                      dtype=torch.float32))
    torch.onnx.export(layer, torch.zeros(1, len(NUMBERS)), str(path), input_names=["features"],
                      output_names=["logit"], dynamic_axes={"features": {0: "n"}}, dynamo=False)
    return reference


def test_an_onnx_model_from_torch_is_imported_evaluated_and_promoted(trained, tmp_path):
    from sklearn.metrics import roc_auc_score

    home, source, _ = trained
    frame = pd.read_csv(source)
    reference = _torch_logistic(frame, frame["default"].to_numpy(), tmp_path / "net.onnx")
    (tmp_path / "sig.yaml").write_text(
        "task: binary\ntarget: default\nclasses: [0, 1]\noutput_kind: logits\ncolumns:\n"
        + "".join(f"  {c}: number\n" for c in NUMBERS))
    imported = _json(run_loopml("models", "import", str(tmp_path / "net.onnx"), "--name",
                                "from torch", "--signature", str(tmp_path / "sig.yaml"),
                                "--json", home=home))
    assert imported["source"] == "import" and imported["flavour"] == "onnx"
    assert imported["artifacts"]["native"] is None

    evaluated = _json(run_loopml("models", "evaluate", "from torch@1", "--data", "credit@1",
                                 "--json", home=home))
    # an independent reference: the same logistic regression in scikit-learn, same rows
    stored = loopml.data.Catalog.from_workspace(Workspace.from_env(home, env={})).load(
        "credit@1", project="credit")
    want = roc_auc_score(stored["default"], reference.predict_proba(stored[NUMBERS])[:, 1])
    assert evaluated["metrics"]["roc_auc"] == pytest.approx(want, abs=1e-6)
    assert Path(evaluated["card"]).is_file()
    shown = _json(run_loopml("models", "show", "from torch@1", "--json", home=home))
    assert shown["metrics"]["roc_auc"] == pytest.approx(want, abs=1e-6)  # its first card

    no_rows = run_loopml("models", "promote", "from torch", "1", home=home)
    assert no_rows.returncode == 2 and "--data" in no_rows.stderr
    promoted = _json(run_loopml("models", "promote", "from torch", "1", "--to", "champion",
                                "--data", "credit@1", "--json", home=home))
    assert promoted["moved"] and promoted["report"]["passed"]


def test_import_mistakes_are_one_line(trained, tmp_path):
    home, _, _ = trained
    (tmp_path / "x.onnx").write_bytes(b"not onnx")
    (tmp_path / "sig.yaml").write_text("task: binary\nclasses: [0, 1]\noutput_kind: logits\n"
                                       "columns: {age: number}\ncolour: red\n")
    cases = [
        (["models", "import", str(tmp_path / "x.onnx"), "--name", "m"], "needs --signature"),
        (["models", "import", str(tmp_path / "x.onnx"), "--name", "m", "--signature",
          str(tmp_path / "sig.yaml")], "colour"),
        (["models", "evaluate", "credit@1", "--data", "nosuch@1"], "nosuch"),
    ]
    for args, expected in cases:
        result = run_loopml(*args, home=home)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
