"""Evaluation against independent references: sklearn metrics, hand-computed fairness, SHAP sums."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.evaluate.explain import raw_prediction, source_columns, tree_shap
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
    contributions, expected = tree_shap(model, rows)
    raw = raw_prediction(model, rows)
    np.testing.assert_allclose(contributions.sum(axis=1), raw - expected, rtol=1e-4, atol=1e-4)
    # log-odds back to the probability the model reports
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), model.predict_proba(rows)[:, 1],
                               rtol=1e-5, atol=1e-6)


def test_contributions_of_derived_columns_add_up_per_input_column(frame):
    from loopml.evaluate.explain import explain

    model = _fit(frame, "lightgbm")
    rows = frame.head(50)
    result = explain(model, rows, rows["default"].to_numpy(), metric="roc_auc")
    assert result["method"] == "tree_shap" and set(result["importance"]) == set(
        model.input_columns)
    contributions, expected = tree_shap(model, rows)
    first = result["rows"][0]
    assert sum(first["contributions"].values()) == pytest.approx(contributions[0].sum())
    assert first["expected_value"] == pytest.approx(expected[0])


def test_permutation_importance_for_models_without_tree_shap(frame):
    from loopml.evaluate.explain import explain

    model = _fit(frame, "linear")
    result = explain(model, frame, frame["default"].to_numpy(), metric="roc_auc")
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
    contributions, expected = tree_shap(model, frame)
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
