"""Realised metrics equal scikit-learn's; the confidence-based estimate follows the realised."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from loopml.errors import InvalidInput
from loopml.monitor.performance import (
    Calibrator,
    estimate_metrics,
    expected_roc_auc,
    model_reference,
    prediction_reference,
    realised_metrics,
)

# ----------------------------------------------------------------------------- realised


def test_binary_realised_metrics_equal_sklearn():
    rng = np.random.default_rng(1)
    n = 500
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    proba = np.column_stack([1 - p, p])
    classes = ["no", "yes"]
    y_true = [classes[v] for v in y]
    y_true[:7] = [None] * 7  # not labelled yet: left out
    got = realised_metrics("binary", classes, pa.array(y_true), None,
                           pa.array(proba.tolist(), pa.list_(pa.float64())), threshold=0.3)
    keep = slice(7, None)
    pred = (p[keep] >= 0.3).astype(int)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y[keep], p[keep]))
    assert got["accuracy"] == pytest.approx(accuracy_score(y[keep], pred))
    assert got["f1"] == pytest.approx(f1_score(y[keep], pred))
    assert got["brier"] == pytest.approx(brier_score_loss(y[keep], p[keep]))
    assert got["log_loss"] == pytest.approx(log_loss(y[keep], proba[keep]))


def test_binary_realised_from_logged_predictions_without_probabilities():
    y_true = pa.array([True, False, True, True, None])
    logged = pa.array(["true", "false", "false", "true", "true"])  # JSON text, as in the log
    got = realised_metrics("binary", [False, True], y_true, logged, None, threshold=None)
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["f1"] == pytest.approx(f1_score([1, 0, 1, 1], [1, 0, 0, 1]))
    assert got["roc_auc"] is None  # needs probabilities


def test_multiclass_realised_metrics_equal_sklearn():
    rng = np.random.default_rng(2)
    n = 600
    proba = rng.dirichlet([1, 1, 1], size=n)
    y = np.array([rng.choice(3, p=row) for row in proba])
    got = realised_metrics("multiclass", [10, 20, 30], np.array([10, 20, 30])[y],
                           [json.dumps(int(v)) for v in np.array([10, 20, 30])[y]], proba,
                           threshold=None)
    pred = proba.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["roc_auc_ovr"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    assert got["log_loss"] == pytest.approx(log_loss(y, proba))
    assert got["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))


def test_regression_realised_metrics_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.3, size=300)
    y_true = pa.array(np.append(y, np.nan), mask=np.append(np.zeros(300, bool), True))
    logged = pa.array([json.dumps(float(v)) for v in pred] + ["1.0"])
    got = realised_metrics("regression", [], y_true, logged, None)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)))
    assert got["mae"] == pytest.approx(mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(r2_score(y, pred))


def test_labels_the_model_does_not_know_are_left_out():
    got = realised_metrics("binary", [0, 1], pa.array([0, 1, 7]), None,
                           np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), threshold=0.5)
    assert got["accuracy"] == 1.0
    with pytest.raises(InvalidInput, match="classes"):
        realised_metrics("binary", [], pa.array([0]), None, np.array([[0.5, 0.5]]))


# ----------------------------------------------------------------------------- calibrator


def test_calibrator_is_sklearns_isotonic_regression_and_survives_json():
    rng = np.random.default_rng(4)
    n = 2000
    raw = rng.uniform(size=n)
    y = (rng.uniform(size=n) < raw ** 2).astype(int)  # over-confident model
    proba = np.column_stack([1 - raw, raw])
    calibrator = Calibrator.fit("binary", y, proba)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y)
    fresh = rng.uniform(-0.1, 1.1, size=500)  # outside the fitted range too: clipped
    expected = iso.predict(fresh)
    got = calibrator.transform(np.column_stack([1 - fresh, fresh]))
    np.testing.assert_allclose(got[:, 1], expected, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    again = Calibrator.from_json(json.loads(json.dumps(calibrator.to_json(), allow_nan=False)))
    assert again == calibrator
    with pytest.raises(InvalidInput, match="calibrator"):
        Calibrator.from_json({"task": "binary", "curves": [{"x": [0.1]}]})


def test_multiclass_calibrator_normalises_per_class_isotonic():
    rng = np.random.default_rng(5)
    proba = rng.dirichlet([2, 2, 2], size=1500)
    y = np.array([rng.choice(3, p=row) for row in proba])
    calibrator = Calibrator.fit("multiclass", y, proba)
    fresh = rng.dirichlet([2, 2, 2], size=200)
    per_class = np.column_stack([
        IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
        .fit(proba[:, c], y == c).predict(fresh[:, c]) for c in range(3)])
    np.testing.assert_allclose(calibrator.transform(fresh),
                               per_class / per_class.sum(axis=1, keepdims=True), atol=1e-12)


# ----------------------------------------------------------------------------- the estimate


def test_expected_roc_auc_is_the_weighted_pair_count():
    rng = np.random.default_rng(6)
    scores = np.round(rng.uniform(size=60), 1)  # ties
    weights = rng.uniform(size=60)
    top = sum(weights[i] * (1 - weights[j]) * ((scores[i] > scores[j]) + 0.5 *
                                               (scores[i] == scores[j]))
              for i in range(60) for j in range(60))
    assert expected_roc_auc(scores, weights) == pytest.approx(
        top / (weights.sum() * (1 - weights).sum()))
    labels = (weights > 0.5).astype(float)  # certain labels: the realised ROC-AUC
    assert expected_roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert expected_roc_auc(scores, np.ones(60)) is None


def _binary_world(rng, n, a, b):
    """Return (raw model probabilities, labels): true p ~ Beta(a, b); the model sharpens it."""
    p = rng.beta(a, b, size=n)
    y = (rng.uniform(size=n) < p).astype(int)
    raw = p ** 2 / (p ** 2 + (1 - p) ** 2)  # monotone, miscalibrated
    return np.column_stack([1 - raw, raw]), y


def _close(estimated, realised, names, tol):
    for name in names:
        assert estimated[name] == pytest.approx(realised[name], abs=tol), name


def test_binary_estimate_matches_realised_when_the_model_is_calibrated():
    rng = np.random.default_rng(7)
    ref_proba, ref_y = _binary_world(rng, 20_000, 2, 3)
    calibrator = Calibrator.fit("binary", ref_y, ref_proba)
    proba, y = _binary_world(rng, 20_000, 2, 3)
    estimated = estimate_metrics("binary", [0, 1], proba, calibrator, threshold=0.4)
    realised = realised_metrics("binary", [0, 1], y, None, proba, threshold=0.4)
    pred = proba[:, 1] >= 0.4
    realised["precision"] = precision_score(y, pred)
    realised["recall"] = recall_score(y, pred)
    _close(estimated, realised, ["roc_auc", "accuracy", "precision", "recall", "f1", "brier",
                                 "log_loss"], 0.015)


def test_binary_estimate_follows_a_covariate_shift():
    rng = np.random.default_rng(8)
    ref_proba, ref_y = _binary_world(rng, 20_000, 2, 3)
    calibrator = Calibrator.fit("binary", ref_y, ref_proba)
    proba, y = _binary_world(rng, 20_000, 2, 3)
    before = realised_metrics("binary", [0, 1], y, None, proba, threshold=0.5)
    # The rows move towards the uncertain middle: the same model gets much worse.
    shifted_proba, shifted_y = _binary_world(rng, 20_000, 9, 9)
    after = realised_metrics("binary", [0, 1], shifted_y, None, shifted_proba, threshold=0.5)
    estimated = estimate_metrics("binary", [0, 1], shifted_proba, calibrator, threshold=0.5)
    assert before["roc_auc"] - after["roc_auc"] > 0.1
    assert before["accuracy"] - after["accuracy"] > 0.05
    _close(estimated, after, ["roc_auc", "accuracy", "f1"], 0.02)


def test_multiclass_estimate_matches_realised():
    rng = np.random.default_rng(9)

    def world(n, alpha):
        p = rng.dirichlet(alpha, size=n)
        y = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)
        raw = p ** 1.5 / (p ** 1.5).sum(axis=1, keepdims=True)
        return raw, y

    calibrator = Calibrator.fit("multiclass", *world(20_000, [1, 2, 3])[::-1])
    proba, y = world(20_000, [1, 2, 3])
    estimated = estimate_metrics("multiclass", ["a", "b", "c"], proba, calibrator,
                                 threshold=None)
    realised = realised_metrics("multiclass", ["a", "b", "c"], np.array(["a", "b", "c"])[y],
                                None, proba, threshold=None)
    _close(estimated, realised, ["accuracy", "roc_auc_ovr", "f1_macro", "log_loss"], 0.02)


def test_no_estimate_for_regression_or_without_probabilities():
    assert estimate_metrics("regression", [], None, None) is None
    calibrator = Calibrator.fit("binary", [0, 1], np.array([[0.6, 0.4], [0.3, 0.7]]))
    assert estimate_metrics("binary", [0, 1], None, calibrator) is None
    with pytest.raises(InvalidInput, match="2 classes"):
        estimate_metrics("binary", [0, 1], np.ones((3, 3)) / 3, calibrator)


# ----------------------------------------------------------------------------- references


def test_prediction_reference_bins_as_the_window_sketch_does():
    from loopml.monitor.sketch import FeatureRef, Reference, WindowSketch

    values = np.round(np.random.default_rng(10).uniform(size=1000), 2)  # ties on edges
    ref = prediction_reference("binary", values=values)
    assert ref["kind"] == "numeric" and ref["rows"] == 1000
    assert (ref["low"], ref["high"]) == (0.0, 1.0)
    assert sum(ref["counts"]) == 1000 and ref["counts"][0] == ref["counts"][-1] == 0
    # The same outputs seen in a window land in exactly the reference's bins.
    reference = Reference(features={}, prediction=FeatureRef.from_json(ref), rows=1000,
                          source="test")
    sketch = WindowSketch.empty(reference)
    sketch.update(pa.table({"x": np.zeros(1000)}), reference=reference,
                  prediction=pa.array(values))
    assert sketch.prediction.counts == ref["counts"]
    constant = prediction_reference("regression", values=np.full(10, 3.0))
    assert sum(constant["counts"]) == 10
    multi = prediction_reference("multiclass", labels=[2, 0, 2, 5], classes=[0, 1, 2])
    assert multi["categories"] == ["0", "1", "2"]
    assert multi["category_counts"] == [1.0, 0.0, 2.0, 1.0]


@pytest.fixture(scope="module")
def credit_home(tmp_path_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from server_helpers import credit_workspace

    return credit_workspace(tmp_path_factory.mktemp("credit"), versions=1, rows=600)


@pytest.mark.slow
def test_model_reference_of_a_trained_version(credit_home):
    from loopml.evaluate.report import encode_labels
    from loopml.registry.promote import training_parts
    from loopml.registry.registry import Registry
    from loopml.workspace import Workspace

    with Registry.open(Workspace.from_env(credit_home, env={})) as registry:
        record = registry.get("credit@1")
        reference = model_reference(registry, record)
        test = training_parts(registry, record)["test"]
        model = registry.load(record)
    json.dumps(reference, allow_nan=False)  # stored as JSON by the runner
    outputs = record.signature["outputs"]
    inputs = [c["name"] for c in record.signature["inputs"]]
    proba = np.asarray(model.predict_proba(test[inputs]), dtype=float)
    y = encode_labels(test[outputs["target"]].tolist(), outputs["labels"])
    assert reference["test_rows"] == len(test)
    assert reference["test_metrics"] == record.metrics
    assert reference["threshold"] == outputs.get("threshold")
    # The calibrator is the one fitted on the test split's labels and the model's output.
    calibrator = Calibrator.from_json(reference["calibrator"])
    assert calibrator == Calibrator.fit("binary", y, proba)
    # The card's ROC-AUC is the realised one on the same rows.
    realised = realised_metrics("binary", outputs["labels"], test[outputs["target"]].tolist(),
                                None, proba, threshold=outputs.get("threshold"))
    assert realised["roc_auc"] == pytest.approx(record.metrics["roc_auc"])
    prediction = reference["prediction"]
    assert prediction["kind"] == "numeric" and prediction["rows"] == len(test)
    assert sum(prediction["counts"]) == len(test)
    assert prediction["mean"] == pytest.approx(proba[:, 1].mean())
    try:
        from loopml.monitor.sketch import FeatureRef
    except ImportError:
        return
    FeatureRef(**prediction)
