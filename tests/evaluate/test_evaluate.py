"""Evaluation against independent references: sklearn metrics, hand-computed fairness, SHAP sums."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.evaluate.explain import source_columns
from loopml.evaluate.fairness import group_rates
from loopml.evaluate.metrics import all_metrics
from loopml.train.features import FeatureSet, build_preprocessor
from loopml.train.model import TrainedModel


@pytest.fixture
def frame() -> pd.DataFrame:
    from loopml.demo_data import make_credit

    return make_credit(1500, seed=11)


def _fit(frame: pd.DataFrame, candidate: str) -> TrainedModel:
    from sklearn.pipeline import Pipeline

    from loopml.train.trainers import get_trainer

    features = FeatureSet(numeric=["age", "income", "debt", "years_at_address"],
                          categorical=["employment", "city"])
    trainer = get_trainer(candidate)
    pipeline = Pipeline([
        ("features", build_preprocessor(features, frame, tree_based=trainer.tree_based)),
        ("model", trainer.build(trainer.defaults("binary"), task="binary", seed=0)),
    ]).fit(frame[features.columns], frame["default"])
    return TrainedModel(pipeline, "binary", "default", features.columns, [0, 1], 0.4,
                        candidate)


def _predictions(model: TrainedModel):
    def predictions(rows):
        proba = model.predict_proba(rows)
        return (proba[:, 1] >= model.threshold).astype(int), proba
    return predictions


def test_binary_metrics_equal_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    predicted = np.array([0, 0, 0, 1])  # threshold 0.5
    ours = all_metrics("binary", y, predicted, proba, labels=[0, 1])
    assert ours == pytest.approx({
        "roc_auc": 3 / 4,  # of 4 (positive, negative) pairs, only (0.35, 0.4) is misordered
        "pr_auc": (1 / 1 + 2 / 3) / 2,  # precision at each positive, ranked by score
        "log_loss": -np.mean(np.log([0.9, 0.6, 0.35, 0.8])),
        "f1": 2 / 3,  # precision 1, recall 1/2
        "accuracy": 3 / 4,
        "brier": (0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4,
    })


def test_regression_and_multiclass_metrics_equal_hand_computed_values():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 8.0])
    assert all_metrics("regression", y, p, None) == pytest.approx({
        "rmse": 2.0, "mae": 1.0, "r2": 1 - 16 / 5, "mape": 0.25})
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.3, 0.2, 0.5], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    assert all_metrics("multiclass", y, proba.argmax(1), proba, labels=[0, 1, 2]) == \
        pytest.approx({
            "accuracy": 2 / 4,
            "f1_macro": (0 + 1 + 1 / 2) / 3,
            "log_loss": -np.mean(np.log([0.3, 0.8, 0.6, 0.2])),
            "roc_auc_ovr": (2 / 3 + 1 + 3 / 4) / 3,  # pairs ordered right, class by class
        })


def test_undefined_metrics_are_none_with_a_reason():
    from loopml.evaluate.metrics import undefined_reasons

    y = np.array([1, 1, 1])
    proba = np.array([[0.2, 0.8], [0.4, 0.6], [0.1, 0.9]])
    values = all_metrics("binary", y, np.array([1, 1, 1]), proba, labels=[0, 1])
    assert values["roc_auc"] is None and values["accuracy"] == 1.0
    assert undefined_reasons("binary", values, y)["roc_auc"] == "the rows hold a single class"


def test_binary_metrics_equal_sklearn(frame):
    model = _fit(frame, "lightgbm")
    proba = model.predict_proba(frame)
    y = frame["default"].to_numpy()
    predicted = (proba[:, 1] >= 0.4).astype(int)
    ours = all_metrics("binary", y, predicted, proba, labels=[0, 1])
    assert ours == pytest.approx({
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "pr_auc": skm.average_precision_score(y, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba),
        "f1": skm.f1_score(y, predicted),
        "accuracy": skm.accuracy_score(y, predicted),
        "brier": skm.brier_score_loss(y, proba[:, 1]),
    })
    assert list(model.predict(frame.head(50))) == list(predicted[:50])


def test_regression_and_multiclass_metrics_equal_sklearn():
    rng = np.random.default_rng(2)
    y, p = rng.normal(10, 2, 300), rng.normal(10, 2, 300)
    assert all_metrics("regression", y, p, None) == pytest.approx({
        "rmse": np.sqrt(skm.mean_squared_error(y, p)), "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p), "mape": skm.mean_absolute_percentage_error(y, p)})
    labels = rng.integers(0, 3, 300)
    proba = rng.dirichlet([1, 1, 1], 300)
    guess = proba.argmax(1)
    assert all_metrics("multiclass", labels, guess, proba, labels=[0, 1, 2]) == pytest.approx({
        "accuracy": skm.accuracy_score(labels, guess),
        "f1_macro": skm.f1_score(labels, guess, average="macro"),
        "log_loss": skm.log_loss(labels, proba, labels=[0, 1, 2]),
        "roc_auc_ovr": skm.roc_auc_score(labels, proba, multi_class="ovr")})


def test_fairness_gaps_equal_a_hand_computation():
    # group a: 4 rows; y=1,1,0,0; predicted 1,0,1,0 → selection 2/4, TPR 1/2, FPR 1/2
    # group b: 4 rows; y=1,1,0,0; predicted 1,1,0,0 → selection 2/4, TPR 1, FPR 0
    # group c: 2 rows; y=1,0;     predicted 0,0     → selection 0,   TPR 0, FPR 0
    y = [1, 1, 0, 0, 1, 1, 0, 0, 1, 0]
    p = [1, 0, 1, 0, 1, 1, 0, 0, 0, 0]
    g = pd.Series(list("aaaabbbbcc"))
    result = group_rates(np.array(y), np.array(p), g)
    assert result["groups"]["a"] == {"count": 4, "selection_rate": 0.5, "tpr": 0.5, "fpr": 0.5}
    assert result["groups"]["c"] == {"count": 2, "selection_rate": 0.0, "tpr": 0.0, "fpr": 0.0}
    assert result["demographic_parity_difference"] == pytest.approx(0.5 - 0.0)
    assert result["tpr_difference"] == pytest.approx(1.0 - 0.0)
    assert result["fpr_difference"] == pytest.approx(0.5 - 0.0)
    assert result["equalized_odds_difference"] == pytest.approx(1.0)


@pytest.mark.parametrize("candidate", ["lightgbm", "xgboost"])
def test_shap_values_sum_to_prediction_minus_expected_value(frame, candidate):
    model = _fit(frame, candidate)
    rows = frame.sample(200, random_state=1)
    by_column, expected, _ = model.feature_contributions(rows)
    raw = model.raw_output(rows)
    total = sum(by_column.values())
    np.testing.assert_allclose(total, raw - expected, rtol=1e-4, atol=1e-4)
    # log-odds back to the probability the model reports
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), model.predict_proba(rows)[:, 1],
                               rtol=1e-5, atol=1e-6)


def test_contributions_of_derived_columns_add_up_per_input_column(frame):
    from loopml.evaluate.explain import explain

    model = _fit(frame, "lightgbm")
    rows = frame.head(50)
    result = explain(model, rows, rows["default"].to_numpy(), input_columns=model.input_columns,
                     predictions=_predictions(model), metric="roc_auc")
    assert result["method"] == "tree_shap" and set(result["importance"]) == set(
        model.input_columns)
    first = result["rows"][0]
    # per row, the input columns' contributions add up to raw output minus expected value
    assert sum(first["contributions"].values()) + first["expected_value"] == pytest.approx(
        model.raw_output(rows.head(1))[0], abs=1e-4)


def test_permutation_importance_for_models_without_tree_shap(frame):
    from loopml.evaluate.explain import explain

    model = _fit(frame, "linear")
    result = explain(model, frame, frame["default"].to_numpy(), input_columns=model.input_columns,
                     predictions=_predictions(model), metric="roc_auc")
    assert result["method"] == "permutation"
    top = next(iter(result["importance"]))
    assert top in ("debt", "income", "employment")  # the columns the target depends on


def test_source_columns_handles_prefixes():
    names = ["numeric__income", "numeric__income_ratio", "categorical__city_New York",
             "datetime__opened_day_of_week"]
    assert source_columns(names, ["income", "income_ratio", "city", "opened"]) == [
        "income", "income_ratio", "city", "opened"]


@pytest.mark.parametrize("candidate", ["lightgbm", "xgboost"])
def test_multiclass_shap_explains_the_predicted_class(candidate):
    from sklearn.datasets import load_wine
    from sklearn.pipeline import Pipeline

    from loopml.train.trainers import get_trainer

    data = load_wine(as_frame=True)
    frame = data.frame
    features = FeatureSet(numeric=list(data.feature_names))
    trainer = get_trainer(candidate)
    pipeline = Pipeline([
        ("features", build_preprocessor(features, frame, tree_based=True, task="multiclass")),
        ("model", trainer.build({"n_estimators": 50}, task="multiclass", seed=0)),
    ]).fit(frame[features.columns], frame["target"])
    model = TrainedModel(pipeline, "multiclass", "target", features.columns, [0, 1, 2])
    by_column, expected, _ = model.feature_contributions(frame)
    contributions = np.column_stack(list(by_column.values()))
    transformed = np.asarray(pipeline.named_steps["features"].transform(frame), dtype=float)
    estimator = pipeline.named_steps["model"]
    if candidate == "lightgbm":
        margins = estimator.predict(transformed, raw_score=True)
    else:
        import xgboost

        margins = estimator.get_booster().predict(xgboost.DMatrix(transformed),
                                                  output_margin=True)
    chosen = margins[np.arange(len(margins)), margins.argmax(axis=1)]
    np.testing.assert_allclose(contributions.sum(axis=1) + expected, chosen, rtol=1e-4,
                               atol=1e-4)
