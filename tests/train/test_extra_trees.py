"""The extra-trees candidate: trained by ``loopml train`` on each task, exported with parity.

The reference for the ONNX export is the native model loaded back from the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import ProjectConfig
from loopml.optimize.export import to_onnx
from loopml.optimize.parity import check_parity
from loopml.optimize.runtime import OnnxModel
from loopml.train.runner import train_project
from loopml.train.trainers import get_trainer, trainer_names
from loopml.workspace import Workspace

TASKS = {"binary": ("flag", "roc_auc"), "multiclass": ("grade", "log_loss"),
         "regression": ("amount", "rmse")}


def make_rows(n: int, *, seed: int) -> pd.DataFrame:
    """Return numbers and a category, with holes, and a target for each task."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    c = rng.choice(["a", "b", "c"], n)
    signal = 1.5 * x - z + (c == "a") * 1.0
    frame = pd.DataFrame({"x": x, "z": pd.Series(z).mask(rng.random(n) < 0.05), "c": c})
    frame.loc[rng.random(n) < 0.05, "c"] = None
    frame["flag"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    frame["grade"] = np.select([signal < -0.7, signal < 0.7], ["low", "mid"], "high")
    frame["amount"] = 10 * signal + rng.normal(0, 1.0, n)
    return frame


def config_for(source: Path, task: str) -> ProjectConfig:
    target, _ = TASKS[task]
    return ProjectConfig.model_validate({
        "project": {"name": "et"},
        "data": {"dataset": f"et-{task}", "source": str(source), "target": target},
        "features": {"drop": [t for t, _ in TASKS.values() if t != target]},
        "train": {"candidates": ["extra_trees"], "trials": 2, "n_jobs": 1, "seed": 5,
                  "cv_folds": 2, "ensemble": False,  # one forest, its export checked
                  # few trees keep the test fast; the rest of the space is searched as usual
                  "search_space": {"extra_trees": {"n_estimators": {"low": 10, "high": 20,
                                                                    "int": True}}}},
    })


def test_extra_trees_is_a_known_tree_trainer_with_defaults_inside_its_space():
    assert "extra_trees" in trainer_names()
    trainer = get_trainer("extra_trees")
    assert trainer.tree_based and set(trainer.tasks) == {"binary", "multiclass", "regression"}
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    for task in trainer.tasks:
        params = trainer.defaults(task)
        model = trainer.build(params, task=task, seed=3, n_jobs=2)
        expected = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
        assert type(model) is expected
        assert model.random_state == 3 and model.n_jobs == 2
        # the defaults are queued as the first trial: each must lie in the sampled range
        assert 100 <= params["n_estimators"] <= 500 and 0.1 <= params["max_features"] <= 1.0
        assert 1 <= params["min_samples_leaf"] <= 20


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_extra_trees_trains_and_exports_with_parity(tmp_path: Path, task: str):
    import loopml

    source = tmp_path / "rows.csv"
    make_rows(500, seed=0).to_csv(source, index=False)
    workspace = Workspace.from_env(tmp_path / "ws", env={})

    outcome = train_project(config_for(source, task), workspace=workspace)

    assert outcome.card["task"] == task and outcome.card["metric"] == TASKS[task][1]
    assert outcome.search.best_candidate == "extra_trees"
    native = loopml.load_model(outcome.run_id[:8], workspace=workspace)
    estimator = native.pipeline.steps[-1][1]
    assert type(estimator).__name__.startswith("ExtraTrees")
    assert 10 <= estimator.n_estimators <= 20 and estimator.random_state == 5
    metrics = outcome.card["evaluation"]["metrics"]
    if task == "regression":
        assert metrics["r2"] > 0.7
    elif task == "binary":
        assert metrics["roc_auc"] > 0.75
    else:
        assert metrics["accuracy"] > 0.6

    rows = make_rows(300, seed=1)
    rows.loc[:4, "c"] = "never seen"
    exported = OnnxModel.from_bytes(to_onnx(native))
    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    if task == "regression":
        np.testing.assert_allclose(exported.predict(rows), native.predict(rows),
                                   atol=parity.tolerance)
    else:
        np.testing.assert_allclose(exported.predict_proba(rows), native.predict_proba(rows),
                                   atol=1e-5)
        assert list(exported.classes_) == list(native.classes_)
