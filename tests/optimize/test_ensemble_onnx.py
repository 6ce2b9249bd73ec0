"""ONNX export of an ensemble model against the native ensemble: one graph, same answers.

Members are fitted as loopml's search fits them (``build_preprocessor`` + the trainer's
``build``; tree members ordinal-encode, linear ones one-hot and scale), on the rows of
``test_export`` (odd column names, holes in every kind, dates, a target-encoded column),
and scored on rows with unseen and infrequent categories. The reference is always the
native :class:`~loopml.train.ensemble.EnsembleModel` inside its TrainedModel.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from loopml.errors import ExportFailed
from loopml.optimize.contract import signature_of
from loopml.optimize.export import to_onnx
from loopml.optimize.parity import check_parity
from loopml.optimize.runtime import OnnxModel
from loopml.train.ensemble import EnsembleModel
from loopml.train.features import FeatureSet, build_preprocessor
from loopml.train.model import TrainedModel
from loopml.train.trainers import get_trainer

sys.path.insert(0, str(Path(__file__).parent))
from test_export import FEATURES, SMALL, TARGETS, make_frame, scored_rows  # noqa: E402


def fit_member(trainer: str, task: str, frame: pd.DataFrame, *, params: dict | None = None,
               features: FeatureSet = FEATURES, estimator: object = None,
               labels: list | None = None) -> object:
    """Return a fitted features + model pipeline on encoded labels, as the search fits one."""
    from sklearn.pipeline import Pipeline

    builder = get_trainer(trainer)
    X, y = frame[features.columns], frame[TARGETS[task]]
    if task != "regression":
        classes = labels or sorted(y.unique().tolist())
        y = y.map({c: i for i, c in enumerate(classes)})
    model = estimator if estimator is not None else builder.build(
        {**builder.defaults(task), **SMALL.get(trainer, {}), **(params or {})}, task=task,
        seed=0)
    return Pipeline([
        ("features", build_preprocessor(features, X, tree_based=builder.tree_based, task=task)),
        ("model", model),
    ]).fit(X, y.to_numpy())


def make_ensemble(members: list[tuple[str, object]], weights: list[float], task: str,
                  frame: pd.DataFrame, *, threshold: float = 0.4) -> TrainedModel:
    """Return a TrainedModel whose pipeline is the ensemble of ``members`` (name, pipeline)."""
    y = frame[TARGETS[task]]
    classes = sorted(y.unique().tolist()) if task != "regression" else []
    ensemble = EnsembleModel([p for _, p in members], weights, task=task,
                             classes=list(range(len(classes))),
                             names=[n for n, _ in members])
    return TrainedModel(pipeline=ensemble, task=task, target=TARGETS[task],
                        input_columns=FEATURES.columns, classes=classes,
                        threshold=threshold if task == "binary" else 0.5,
                        candidate="ensemble", params={})


@pytest.fixture(scope="module")
def train_rows() -> pd.DataFrame:
    return make_frame(800, seed=0)


MIXES = {
    "binary": [("logistic", {}), ("lightgbm", {}), ("hist_gradient_boosting", {})],
    "multiclass": [("logistic", {}), ("random_forest", {}), ("lightgbm", {})],
    "regression": [("linear", {}), ("hist_gradient_boosting", {}), ("extra_trees",
                                                                     {"n_estimators": 15})],
}


@pytest.mark.parametrize("task", list(MIXES))
def test_an_ensemble_of_mixed_members_answers_like_the_native_ensemble(task, train_rows):
    members = [(name, fit_member(name, task, train_rows, params=params))
               for name, params in MIXES[task]]
    native = make_ensemble(members, [0.5, 0.3, 0.2], task, train_rows)
    blob = to_onnx(native)
    exported = OnnxModel.from_bytes(blob)
    rows = scored_rows(300)

    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    if task == "regression":
        np.testing.assert_allclose(exported.predict(rows), native.predict(rows),
                                   atol=parity.tolerance)
        # the weighted mean, checked against the members directly
        by_hand = sum(w * m.predict(rows[FEATURES.columns])
                      for w, (_, m) in zip([0.5, 0.3, 0.2], members, strict=True))
        np.testing.assert_allclose(exported.predict(rows), by_hand, atol=parity.tolerance)
    else:
        np.testing.assert_allclose(exported.predict_proba(rows), native.predict_proba(rows),
                                   atol=1e-5)
        assert (exported.predict(rows).astype(str) == native.predict(rows).astype(str)).all()
    # members with equal preprocessing (the two tree members here) share it in the graph
    lookups = sum(node.op_type == "LabelEncoder" for node in onnx.load_from_string(blob)
                  .graph.node)
    assert lookups == 2 * len(FEATURES.categorical)
    signature = signature_of(onnx.load_from_string(blob))
    assert signature["task"] == task
    assert signature["classes"] == list(native.classes)
    assert [c["name"] for c in signature["columns"]] == FEATURES.columns
    assert {c["name"]: c["kind"] for c in signature["columns"]} == {
        "Income, USD": "number", "$x": "number", "naïve col": "category",
        "city code": "category", "signup": "datetime"}


def test_members_of_the_same_kind_share_one_graph_without_name_clashes(train_rows):
    # two skl2onnx graphs (spliced, with their own tensor names), two LightGBM forests and
    # two XGBoost graphs (onnxmltools): every name must stay unique in the one graph
    from sklearn.linear_model import LogisticRegression

    task = "binary"
    members = [("logistic", fit_member("logistic", task, train_rows,
                                       estimator=LogisticRegression(C=0.1, max_iter=2000))),
               ("logistic", fit_member("logistic", task, train_rows,
                                       estimator=LogisticRegression(C=10.0, max_iter=2000))),
               ("lightgbm", fit_member("lightgbm", task, train_rows)),
               ("lightgbm", fit_member("lightgbm", task, train_rows,
                                       params={"num_leaves": 7})),
               ("xgboost", fit_member("xgboost", task, train_rows)),
               ("xgboost", fit_member("xgboost", task, train_rows, params={"max_depth": 2}))]
    native = make_ensemble(members, [0.25, 0.15, 0.2, 0.1, 0.2, 0.1], task, train_rows)
    blob = to_onnx(native)
    proto = onnx.load_from_string(blob)
    onnx.checker.check_model(proto, full_check=True)

    outputs = [name for node in proto.graph.node for name in node.output]
    assert len(outputs) == len(set(outputs))
    node_names = [node.name for node in proto.graph.node]
    assert len(node_names) == len(set(node_names))
    initializers = [t.name for t in proto.graph.initializer]
    assert len(initializers) == len(set(initializers))
    assert not set(initializers) & set(outputs)
    parity = check_parity(native, OnnxModel.from_bytes(blob), scored_rows(300))
    assert parity.passed, parity.detail


def test_a_member_fitted_without_a_class_is_placed_by_label(train_rows):
    task = "multiclass"
    full = fit_member("logistic", task, train_rows)
    # "high" is class 0 of the sorted labels: the second member never saw it
    partial_rows = train_rows[train_rows[TARGETS[task]] != "high"]
    # without the target-encoded column: its multiclass encoder wants every class
    fewer = FeatureSet(numeric=FEATURES.numeric, categorical=["naïve col"],
                       datetime=FEATURES.datetime)
    labels = sorted(train_rows[TARGETS[task]].unique().tolist())
    partial = fit_member("lightgbm", task, partial_rows, features=fewer, labels=labels)
    assert list(partial.classes_) == [1, 2]
    native = make_ensemble([("logistic", full), ("lightgbm", partial)], [0.6, 0.4], task,
                           train_rows)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = scored_rows(200)

    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    np.testing.assert_allclose(exported.predict_proba(rows), native.predict_proba(rows),
                               atol=1e-5)


def test_a_member_without_an_onnx_form_is_named(train_rows):
    from sklearn.dummy import DummyClassifier

    task = "binary"
    members = [("logistic", fit_member("logistic", task, train_rows)),
               ("dummy <b>", fit_member("logistic", task, train_rows,
                                        estimator=DummyClassifier(strategy="prior")))]
    native = make_ensemble(members, [0.5, 0.5], task, train_rows)

    with pytest.raises(ExportFailed, match=r"^cannot export ensemble member 2 of 2 "
                                           r"\(dummy <b>\): model \(DummyClassifier\)"):
        to_onnx(native)


def test_members_that_read_a_column_as_two_kinds_cannot_share_an_input(train_rows):
    task = "regression"
    as_category = FeatureSet(numeric=["Income, USD"], categorical=["$x", "naïve col"],
                             datetime=[])
    train = train_rows.assign(**{"$x": train_rows["$x"].round(0)})
    members = [("linear", fit_member("linear", task, train)),
               ("lightgbm", fit_member("lightgbm", task, train, features=as_category))]
    native = make_ensemble(members, [0.5, 0.5], task, train)

    with pytest.raises(ExportFailed, match=r"column '\$x' as number, member 2 \(lightgbm\) "
                                           r"as category"):
        to_onnx(native)


def test_bundle_parity_and_profile_take_an_ensemble(train_rows, tmp_path):
    from loopml.optimize.bundle import write_bundle
    from loopml.optimize.profile import choose_flavour, profile

    task = "regression"
    members = [("linear", fit_member("linear", task, train_rows)),
               ("lightgbm", fit_member("lightgbm", task, train_rows))]
    native = make_ensemble(members, [0.7, 0.3], task, train_rows)
    blob = to_onnx(native)
    exported = OnnxModel.from_bytes(blob)
    rows = scored_rows(60)

    path = write_bundle(blob, tmp_path / "ensemble.zip", name="amounts", version="1")
    report = profile(native, exported, rows, onnx_bytes=blob, native_bytes=100, calls=20,
                     batches=(100,))
    parity = check_parity(native, exported, rows)

    with zipfile.ZipFile(path) as archive:
        assert archive.read("model.onnx") == blob
    assert parity.passed, parity.detail
    assert report["native"]["rows_per_s_100"] > 0 and report["onnx"]["rows_per_s_100"] > 0
    assert choose_flavour(parity, report) in ("onnx", "native")


def test_a_member_whose_features_have_no_onnx_form_is_named(train_rows):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    task = "regression"
    raw = Pipeline([("features", ColumnTransformer([("raw", "passthrough", ["$x"])])),
                    ("model", Ridge())]).fit(train_rows[FEATURES.columns].fillna({"$x": 0.0}),
                                             train_rows[TARGETS[task]])
    members = [("linear", fit_member("linear", task, train_rows)), ("raw ridge", raw)]
    native = make_ensemble(members, [0.5, 0.5], task, train_rows)

    with pytest.raises(ExportFailed, match=r"^cannot export ensemble member 2 of 2 \(raw "
                                           r"ridge\): features/raw: "):
        to_onnx(native)
