"""ONNX export against the native pipeline: every trainer and task, every kind of column.

Models are built the way loopml builds them (``build_preprocessor`` + the trainer's
``build``, as ``loopml.train.search.fit_pipeline`` does), on data with odd column names,
missing values in every kind, a high-cardinality (target-encoded) column, dates, and scored
rows with unseen and infrequent categories. The reference is always the native model.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest

from loopml.errors import ExportFailed, InvalidInput
from loopml.optimize.contract import signature_of
from loopml.optimize.export import to_onnx
from loopml.optimize.parity import check_parity
from loopml.optimize.runtime import OnnxModel
from loopml.train.features import FeatureSet, build_preprocessor
from loopml.train.model import TrainedModel
from loopml.train.trainers import get_trainer

FEATURES = FeatureSet(numeric=["Income, USD", "$x"], categorical=["naïve col", "city code"],
                      datetime=["signup"])
TARGETS = {"binary": "target", "multiclass": "grade", "regression": "amount"}
SMALL = {"random_forest": {"n_estimators": 15}, "hist_gradient_boosting": {"max_iter": 25},
         "lightgbm": {"n_estimators": 25}, "xgboost": {"n_estimators": 25},
         "mlp": {"epochs": 4, "hidden": 32}}
TRAINERS = [("logistic", "binary"), ("logistic", "multiclass"), ("linear", "regression"),
            *[(name, task) for name in ("random_forest", "hist_gradient_boosting",
                                         "lightgbm", "xgboost")
              for task in ("binary", "multiclass", "regression")]]


def make_frame(n: int, *, seed: int) -> pd.DataFrame:
    """Return rows with numbers, a rare category, 50 cities, dates and holes in every kind."""
    rng = np.random.default_rng(seed)

    def holes(values: object, rate: float = 0.08) -> pd.Series:
        return pd.Series(values).mask(rng.random(n) < rate)

    kind = rng.choice(["alpha", "beta", "gamma", "delta"], n, p=[0.4, 0.3, 0.2, 0.1])
    kind = kind.astype(object)
    kind[:3] = "rare"  # fewer rows than OneHotEncoder's min_frequency: infrequent
    city = rng.integers(0, 50, n)
    seconds = rng.integers(-5 * 365 * 86400, 60 * 365 * 86400, n)
    frame = pd.DataFrame({
        "Income, USD": holes(rng.lognormal(10, 0.5, n).round(2)),
        "$x": holes(rng.normal(size=n)),
        "naïve col": holes(kind),
        "city code": holes([f"c{c:02d}" for c in city]),
        "signup": holes(pd.Timestamp("1970-01-01") + pd.to_timedelta(seconds, unit="s")),
    })
    signal = ((frame["Income, USD"].fillna(22000) - 25000) / 15000 + frame["$x"].fillna(0)
              + (frame["naïve col"] == "alpha") - (frame["naïve col"] == "delta")
              + (city % 3) * 0.6 - 0.6 + (frame["signup"].dt.month.fillna(6) > 6) * 0.5)
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    frame["grade"] = np.array(["low", "mid", "high"])[
        np.digitize(signal + rng.normal(size=n), [-0.5, 0.8])]
    frame["amount"] = signal * 100 + rng.normal(size=n) * 10
    return frame


def scored_rows(n: int = 300, *, seed: int = 1) -> pd.DataFrame:
    """Return new rows, some with unseen and infrequent categories."""
    frame = make_frame(n, seed=seed)
    frame.loc[0:4, "naïve col"] = "never seen"
    frame.loc[5:9, "city code"] = "c99"
    frame.loc[10:14, "naïve col"] = "rare"
    frame.loc[15:19, ["Income, USD", "$x", "naïve col", "city code", "signup"]] = None
    return frame


def make_model(trainer: str, task: str, frame: pd.DataFrame, *,
               features: FeatureSet = FEATURES, encoding: str = "auto",
               threshold: float = 0.4) -> TrainedModel:
    """Return a TrainedModel fitted as loopml's search fits one (small sizes for speed)."""
    from sklearn.pipeline import Pipeline

    builder = get_trainer(trainer)
    X, y = frame[features.columns], frame[TARGETS[task]]
    classes = sorted(y.unique().tolist()) if task != "regression" else []
    encoded = y.map({c: i for i, c in enumerate(classes)}).to_numpy() if classes else \
        y.to_numpy()
    pipeline = Pipeline([
        ("features", build_preprocessor(features, X, tree_based=builder.tree_based,
                                        encoding=encoding, task=task)),
        ("model", builder.build({**builder.defaults(task), **SMALL.get(trainer, {})},
                                task=task, seed=0)),
    ]).fit(X, encoded)
    return TrainedModel(pipeline=pipeline, task=task, target=TARGETS[task],
                        input_columns=features.columns, classes=classes,
                        threshold=threshold if task == "binary" else 0.5, candidate=trainer)


@pytest.fixture(scope="module")
def train_rows() -> pd.DataFrame:
    return make_frame(1200, seed=0)


@pytest.mark.parametrize(("trainer", "task"), TRAINERS)
def test_onnx_answers_like_the_native_model(trainer, task, train_rows):
    native = make_model(trainer, task, train_rows)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = scored_rows()

    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    assert parity.rows == len(rows)
    if task == "regression":
        np.testing.assert_allclose(exported.predict(rows), native.predict(rows),
                                   atol=parity.tolerance)
    else:
        proba = native.predict_proba(rows)
        np.testing.assert_allclose(exported.predict_proba(rows), proba, atol=1e-5)
        differ = exported.predict(rows) != native.predict(rows)
        # only a row on the decision boundary may flip: a forest of 15 trees gives 6/15 = 0.4
        # exactly, which is the threshold, and float32 rounding decides the side
        on_boundary = np.abs(proba[:, 1] - native.threshold) <= 1e-6 if task == "binary" \
            else np.diff(np.sort(proba, axis=1)[:, -2:], axis=1)[:, 0] <= 1e-6
        assert not (differ & ~on_boundary).any()
        assert list(exported.classes_) == list(native.classes_)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_torch_mlp_answers_like_the_native_model(task, train_rows):
    pytest.importorskip("torch")
    native = make_model("mlp", task, train_rows)
    parity = check_parity(native, OnnxModel.from_bytes(to_onnx(native)), scored_rows())
    assert parity.passed, parity.detail


@pytest.mark.parametrize(("tree_based", "encoding", "task"), [
    (False, "auto", "binary"), (True, "auto", "binary"), (False, "onehot", "regression"),
    (True, "ordinal", "multiclass"), (False, "target", "multiclass"),
    (True, "target", "regression")])
def test_feature_graph_equals_the_fitted_preprocessing(tree_based, encoding, task,
                                                       train_rows):
    preprocessor = build_preprocessor(FEATURES, train_rows[FEATURES.columns],
                                      tree_based=tree_based, encoding=encoding, task=task)
    y = train_rows[TARGETS[task]]
    preprocessor.fit(train_rows[FEATURES.columns],
                     y.astype("category").cat.codes.astype("int64") if task != "regression"
                     else y)
    rows = scored_rows()

    got = _features(preprocessor, FEATURES, rows)

    expected = preprocessor.transform(rows[FEATURES.columns])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_date_parts_match_pandas_far_from_1970():
    """Leap days, end of day, before 1970 and after 2100: the graph's calendar is exact."""
    features = FeatureSet(datetime=["when"])
    stamps = pd.to_datetime(["1900-03-01 00:00:00", "1969-12-31 23:59:59.5",
                             "1970-01-01 00:00:00", "2000-02-29 12:30:00",
                             "2024-12-31 23:59:59", "2100-03-01 01:00:00", None,
                             "2038-01-19 03:14:08", "1999-12-31 23:00:00"], format="mixed")
    frame = pd.DataFrame({"when": stamps})
    preprocessor = build_preprocessor(features, frame, tree_based=True).fit(frame)
    got = _features(preprocessor, features, frame)
    np.testing.assert_array_equal(got, preprocessor.transform(frame))


def test_empty_text_is_missing_and_whole_numbers_answer_to_both_texts():
    """A category fed as "" counts as missing; 3.0 is found as "3" and as "3.0"."""
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame({"level": rng.choice([1.0, 2.0, 3.0], n), "kind":
                          pd.Series(rng.choice(["a", "b"], n)).mask(rng.random(n) < 0.2)})
    frame["target"] = ((frame["level"] + (frame["kind"] == "a")) > 2.5).astype(int)
    features = FeatureSet(categorical=["level", "kind"])
    native = make_model("logistic", "binary", frame, features=features)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = pd.DataFrame({"level": [1.0, 2.0, 3.0], "kind": ["a", None, "b"]})
    as_text = pd.DataFrame({"level": ["1", "2.0", "3"], "kind": ["a", "", "b"]})
    as_ints = pd.DataFrame({"level": [1, 2, 3], "kind": ["a", None, "b"]})
    expected = native.predict_proba(rows)
    np.testing.assert_allclose(exported.predict_proba(rows), expected, atol=1e-6)
    np.testing.assert_allclose(exported.predict_proba(as_text), expected, atol=1e-6)
    np.testing.assert_allclose(exported.predict_proba(as_ints), expected, atol=1e-6)


def test_a_numeric_column_empty_in_training_still_exports(train_rows):
    """The imputer drops an all-NaN column but keeps its missing indicator."""
    frame = train_rows.assign(empty=np.nan)
    features = FeatureSet(numeric=["Income, USD", "empty"], categorical=["naïve col"])
    for trainer in ("logistic", "lightgbm"):
        native = make_model(trainer, "binary", frame, features=features)
        rows = scored_rows().assign(empty=[1.5] * 100 + [np.nan] * 200)
        parity = check_parity(native, OnnxModel.from_bytes(to_onnx(native)), rows)
        assert parity.passed, parity.detail


def test_signature_names_columns_in_the_metadata_never_in_the_graph(train_rows):
    native = make_model("lightgbm", "multiclass", train_rows)
    proto = onnx.load_model_from_string(to_onnx(native))

    signature = signature_of(proto)

    assert [c["name"] for c in signature["columns"]] == FEATURES.columns
    assert [c["kind"] for c in signature["columns"]] == ["number", "number", "category",
                                                         "category", "datetime"]
    assert [i.name for i in proto.graph.input] == ["x0", "x1", "x2", "x3", "x4"]
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    assert signature["classes"] == ["high", "low", "mid"]
    assert signature["source"] == "loopml" and signature["target"] == "grade"
    assert {o.domain: o.version for o in proto.opset_import} == {"": 15, "ai.onnx.ml": 3}
    json.dumps(signature)  # plain JSON values only
    regression = onnx.load_model_from_string(to_onnx(make_model("linear", "regression",
                                                                train_rows)))
    assert [o.name for o in regression.graph.output] == ["value"]
    assert signature_of(regression)["outputs"] == {"value": "value"}


def test_onnx_model_has_the_trained_model_surface(train_rows):
    native = make_model("hist_gradient_boosting", "binary", train_rows, threshold=0.3)
    exported = OnnxModel.from_bytes(to_onnx(native), threads=2)
    assert exported.task == "binary" and exported.target == "target"
    assert exported.input_columns == native.input_columns
    assert exported.classes == [0, 1] and exported.threshold == 0.3
    assert exported.classes_.dtype == native.classes_.dtype
    regression = OnnxModel.from_bytes(to_onnx(make_model("linear", "regression",
                                                         train_rows)))
    with pytest.raises(InvalidInput, match="no probabilities"):
        regression.predict_proba(scored_rows())
    with pytest.raises(InvalidInput, match="missing column"):
        exported.predict(scored_rows().drop(columns=["$x"]))


def test_evaluate_accepts_the_onnx_model_like_the_native_one(train_rows):
    from loopml.evaluate.report import evaluate

    native = make_model("lightgbm", "binary", train_rows)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = scored_rows()
    common = {"task": "binary", "metric": "roc_auc", "input_columns": FEATURES.columns,
              "classes": native.classes, "threshold": native.threshold}
    ours = evaluate(exported, rows, rows["target"], **common)
    theirs = evaluate(native, rows, rows["target"], **common)
    for name, value in theirs["metrics"].items():
        assert ours["metrics"][name] == pytest.approx(value, abs=1e-6), name
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]


def test_an_estimator_with_no_onnx_form_names_the_model_step(train_rows):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Mystery(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))

    native = make_model("logistic", "binary", train_rows)
    native.pipeline.steps[-1] = ("model", Mystery().fit(None, [0, 1]))
    with pytest.raises(ExportFailed, match=r"model \(Mystery\)"):
        to_onnx(native)


def test_a_transformer_with_no_onnx_form_names_the_features_part(train_rows):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer

    X = train_rows[["$x", "Income, USD"]].fillna(0)
    pipeline = Pipeline([
        ("features", ColumnTransformer([("curves", SplineTransformer(), ["$x"]),
                                        ("logs", FunctionTransformer(np.log1p),
                                         ["Income, USD"])])),
        ("model", get_trainer("logistic").build({}, task="binary", seed=0)),
    ]).fit(X, train_rows["target"])
    native = TrainedModel(pipeline=pipeline, task="binary", target="target",
                          input_columns=["$x", "Income, USD"], classes=[0, 1])
    with pytest.raises(ExportFailed, match="features/curves.*SplineTransformer"):
        to_onnx(native)


def _features(preprocessor, features: FeatureSet, rows: pd.DataFrame) -> np.ndarray:
    """Return the export's feature tensor for ``rows`` (the graph cut before the model)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from loopml.optimize.contract import input_feeds, make_signature
    from loopml.optimize.export import column_kinds, features_graph
    from loopml.optimize.graph import Graph

    g = Graph()
    kinds = column_kinds(preprocessor, features.columns)
    names = {c: f"x{i}" for i, c in enumerate(features.columns)}
    out, width = features_graph(g, preprocessor, names)
    types = {"number": TensorProto.DOUBLE, "category": TensorProto.STRING,
             "datetime": TensorProto.DOUBLE}
    proto = g.model([helper.make_tensor_value_info(names[c], types[kinds[c]], [None, 1])
                     for c in features.columns],
                    [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None, width])])
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    signature = make_signature(task="regression", classes=[],
                               columns=[(c, kinds[c]) for c in features.columns])
    return session.run(None, input_feeds(rows, signature))[0]


@pytest.mark.parametrize("single", [False, True])
def test_tree_thresholds_answer_as_in_double(single):
    """x <= 0.1 in double, whether the graph's thresholds are double or float32 rounded down."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from loopml.optimize.estimators import Tree, tree_ensemble
    from loopml.optimize.graph import Graph

    tree = Tree(feature=np.array([0, 0, 0]), threshold=np.array([0.1, 0.0, 0.0]),
                left=np.array([1, 0, 0]), right=np.array([2, 0, 0]),
                missing_left=np.array([1, 0, 0]), leaf=np.array([False, True, True]),
                values=np.array([[0.0], [1.0], [2.0]]), targets=[0])
    kind = TensorProto.FLOAT if single else TensorProto.DOUBLE
    g = Graph()
    out = tree_ensemble(g, "x", [tree], n_targets=1, single=single)
    proto = g.model([helper.make_tensor_value_info("x", kind, [None, 1])],
                    [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 1])])
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = np.array([[0.1], [np.float32(0.1)], [np.nextafter(np.float32(0.1), np.float32(0))],
                  [0.05]], dtype=np.float32 if single else np.float64)
    expected = np.where(x.astype(np.float64) <= 0.1, 1.0, 2.0)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], expected)
