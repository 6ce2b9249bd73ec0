"""An ensemble model stored, loaded, batch-scored and served like any other loopml model.

The ensemble is a :class:`~loopml.train.model.TrainedModel` whose pipeline is an
:class:`~loopml.train.ensemble.EnsembleModel` of pipelines fitted as loopml's search fits
them (a linear member one-hot encodes and scales, a tree member ordinal-encodes). The
reference is always the ensemble in this process: its ``predict`` and ``predict_proba``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopml.train.ensemble import EnsembleModel
from loopml.train.features import FeatureSet, build_preprocessor
from loopml.train.model import TrainedModel
from loopml.train.trainers import get_trainer
from loopml.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from test_batch import FEATURES, TARGETS, assert_scored, make_frame  # noqa: E402

NAME = "amounts"
MEMBERS = {"binary": [("logistic", {}), ("lightgbm", {"n_estimators": 20})],
           "regression": [("linear", {}), ("hist_gradient_boosting", {"max_iter": 20})]}


def fit_member(trainer: str, task: str, frame: pd.DataFrame, params: dict, *,
               features: FeatureSet) -> object:
    from sklearn.pipeline import Pipeline

    builder = get_trainer(trainer)
    X, y = frame[features.columns], frame[TARGETS[task]]
    if task != "regression":
        y = y.map({c: i for i, c in enumerate(sorted(y.unique().tolist()))})
    return Pipeline([
        ("features", build_preprocessor(features, X, tree_based=builder.tree_based, task=task)),
        ("model", builder.build({**builder.defaults(task), **params}, task=task, seed=0)),
    ]).fit(X, y.to_numpy())


def make_ensemble(task: str, frame: pd.DataFrame, *, narrow: bool = False) -> TrainedModel:
    """Return a two-member ensemble; ``narrow``: the tree member does not read ``débt``."""
    features = FeatureSet(**FEATURES)
    fewer = FeatureSet(**{**FEATURES, "numeric": ["Income, USD"]}) if narrow else features
    members = [fit_member(name, task, frame, params, features=features if i == 0 else fewer)
               for i, (name, params) in enumerate(MEMBERS[task])]
    classes = sorted(frame[TARGETS[task]].unique().tolist()) if task != "regression" else []
    ensemble = EnsembleModel(members, [0.6, 0.4], task=task,
                             classes=list(range(len(classes))),
                             names=[name for name, _ in MEMBERS[task]])
    return TrainedModel(pipeline=ensemble, task=task, target=TARGETS[task],
                        input_columns=features.columns, classes=classes,
                        threshold=0.4 if task == "binary" else 0.5, candidate="ensemble",
                        params={})


@pytest.fixture(scope="module")
def train_rows() -> pd.DataFrame:
    return make_frame(600, seed=0)


@pytest.fixture(scope="module")
def models(train_rows) -> dict[str, TrainedModel]:
    return {task: make_ensemble(task, train_rows) for task in MEMBERS}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = make_frame(200, seed=1)
    frame.loc[0:4, "naïve col"] = "never seen"
    return frame


def test_model_kinds_of_an_ensemble_are_its_members_columns(train_rows):
    from loopml.serve.batch_scorer import model_kinds

    model = make_ensemble("regression", train_rows, narrow=True)

    # the linear member reads every column; the tree member all but "débt"
    assert model_kinds(model) == {"Income, USD": "number", "débt": "number",
                                  "naïve col": "category", "city code": "category",
                                  "signup": "datetime"}


@pytest.mark.parametrize("task", list(MEMBERS))
def test_a_signed_ensemble_loads_back_and_answers_the_same(task, models, rows, tmp_path):
    import loopml
    from loopml.registry import dump_model
    from loopml.registry.signing import signing_key

    workspace = Workspace.from_env(tmp_path / "ws", env={})
    workspace.home.mkdir(parents=True)
    model = models[task]
    path = tmp_path / "model.loopml"
    path.write_bytes(dump_model(model, key=signing_key(workspace)))

    loaded = loopml.load_model(str(path), workspace=workspace)

    assert isinstance(loaded.pipeline, EnsembleModel)
    assert loaded.candidate == "ensemble" and loaded.params == {}
    assert loaded.pipeline.weights == model.pipeline.weights
    columns = FEATURES["numeric"] + FEATURES["categorical"] + FEATURES["datetime"]
    np.testing.assert_array_equal(loaded.predict(rows[columns]), model.predict(rows[columns]))
    if task != "regression":
        np.testing.assert_array_equal(loaded.predict_proba(rows[columns]),
                                      model.predict_proba(rows[columns]))


@pytest.mark.parametrize("flavour", ["native", "onnx"])
@pytest.mark.parametrize("task", list(MEMBERS))
def test_batch_scoring_of_an_ensemble(task, flavour, models, rows, tmp_path):
    from loopml.optimize.export import to_onnx
    from loopml.optimize.parity import regression_tolerance
    from loopml.optimize.runtime import OnnxModel
    from loopml.serve.batch import score_file

    native = models[task]
    model = native if flavour == "native" else OnnxModel.from_bytes(to_onnx(native))
    rows.to_csv(tmp_path / "in.csv", index=False)
    score_file(model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=64)
    written = pd.read_csv(tmp_path / "out.csv")
    source = pd.read_csv(tmp_path / "in.csv")

    assert_scored(written, model, source)
    if task == "regression":  # the ONNX flavour answers like the native ensemble too
        expected = native.predict(source)
        np.testing.assert_allclose(written["prediction"], expected,
                                   atol=regression_tolerance(expected))
    else:
        probabilities = [c for c in written.columns if c.startswith("probability_")]
        np.testing.assert_allclose(written[probabilities], native.predict_proba(source),
                                   atol=1e-5)


@pytest.fixture(scope="module")
def registered(tmp_path_factory, models) -> tuple[Workspace, TrainedModel]:
    """A workspace whose ``amounts@1`` is a binary ensemble, exported to ONNX."""
    from loopml.evaluate.card import card_json
    from loopml.registry import MODEL_ARTIFACT, dump_model
    from loopml.registry.export import export_onnx
    from loopml.registry.registry import Registry
    from loopml.registry.signing import signing_key
    from loopml.tracking import TrackingClient

    workspace = Workspace.from_env(tmp_path_factory.mktemp("ensemble") / "ws", env={})
    model = models["binary"]
    card = {"task": "binary", "metric": "roc_auc", "features": FEATURES,
            "model": {"candidate": "ensemble", "params": {}},
            "evaluation": {"metrics": {"roc_auc": 0.8}}}
    client = TrackingClient.from_workspace(workspace)
    try:
        with client.start_run("train", project=NAME) as run:
            run.log_artifact(dump_model(model, key=signing_key(workspace)), MODEL_ARTIFACT)
            run.log_artifact(card_json(card), "model_card.json")
            run_id = run.id
    finally:
        client.close()
    with Registry.open(workspace) as registry:
        record, _ = registry.register(run_id, name=NAME)
        exported = export_onnx(registry, record, rows=make_frame(300, seed=2),
                               profile_rows=False)
    assert exported.onnx is not None, exported.export
    assert exported.export["parity"]["passed"], exported.export
    return workspace, model


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["native", "onnx"])
def test_a_registered_ensemble_serves_in_both_flavours(registered, rows, flavour, tmp_path):
    from loopml.serve.app import ServeSettings, create_app

    workspace, model = registered
    sent = rows.head(30)[model.input_columns]
    body = [{c: None if pd.isna(v) else v.isoformat() if isinstance(v, pd.Timestamp) else v
             for c, v in zip(sent.columns, values, strict=True)}
            for values in sent.itertuples(index=False)]
    app = create_app(ServeSettings(ref=f"{NAME}@1", log_dir=str(tmp_path / "log"),
                                   flavour=flavour), workspace=workspace)
    with TestClient(app) as client:
        response = client.post(f"/v1/models/{NAME}/predict?explain=true", json=body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["flavour"] == flavour
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba(sent), atol=1e-4)
    assert answer["predictions"] == model.predict(sent).tolist()
    # an ensemble has no TreeSHAP of its own: no contributions, and no error
    assert answer["contributions"] is None
