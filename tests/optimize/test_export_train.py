"""A model trained by ``loopml train`` (the real code path, stored and loaded) exports with
parity on its own test rows, and evaluates to the same metrics as the native model."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import ProjectConfig
from loopml.optimize.export import to_onnx
from loopml.optimize.parity import check_parity
from loopml.optimize.runtime import OnnxModel
from loopml.workspace import Workspace


@pytest.mark.slow
@pytest.mark.parametrize("candidate", ["logistic", "xgboost"])
def test_a_trained_and_stored_model_exports_with_parity(tmp_path: Path, candidate):
    import loopml
    from loopml.demo_data import make_credit
    from loopml.evaluate.report import evaluate
    from loopml.train.runner import train_project

    source = tmp_path / "credit.csv"
    frame = make_credit(800, seed=3)
    frame.loc[::17, "city"] = None  # holes in a category and a number
    frame.loc[::23, "income"] = None
    frame.to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "risk"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "sensitive": ["gender"], "pii": {"email": "hash"}},
        "train": {"candidates": [candidate], "trials": 1, "n_jobs": 1, "seed": 5,
                  "cv_folds": 2},
    })
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    outcome = train_project(config, workspace=workspace)
    native = loopml.load_model(outcome.run_id[:8], workspace=workspace)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = make_credit(300, seed=11)
    rows.loc[:4, "city"] = "Toulouse"  # a city never seen in training

    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    common = {"task": native.task, "metric": "roc_auc", "input_columns": native.input_columns,
              "classes": native.classes, "threshold": native.threshold}
    ours = evaluate(exported, rows, rows["default"], **common)["metrics"]
    theirs = evaluate(native, rows, rows["default"], **common)["metrics"]
    assert ours == pytest.approx(theirs, abs=1e-6)
