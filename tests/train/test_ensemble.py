"""Greedy ensemble selection (Caruana et al. 2004) and the ensemble as one model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from loopml.errors import InvalidInput
from loopml.train.ensemble import EnsembleModel, ensemble_selection, select_or_single


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(((y - pred) ** 2).mean())


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, 1)).mean())


def test_selection_matches_a_greedy_run_done_by_hand() -> None:
    # y = 0, so each prediction is its own error. MSE of one alone: 1/4, 1/4, 25/64.
    # round 1: candidates 0 and 1 tie at 1/4 → the lower index, 0.
    # round 2: mean(0,0) 1/4; mean(0,1) = [.5,0,0,-.5] → 1/8; mean(0,2) → 0.16 → candidate 1.
    # round 3: sum [1,0,0,-1]; +0 → 5/36 ≈ .139; +1 → 5/36; +2 → 3.5625/36 ≈ .099 → candidate 2.
    y = np.zeros(4)
    candidates = [np.array([0.5, 0.5, -0.5, -0.5]), np.array([0.5, -0.5, 0.5, -0.5]),
                  np.full(4, -0.625)]
    weights = ensemble_selection(candidates, y, score=mse, greater_is_better=False, rounds=3)
    np.testing.assert_array_equal(weights, [1 / 3, 1 / 3, 1 / 3])
    one = ensemble_selection(candidates, y, score=mse, greater_is_better=False, rounds=1)
    np.testing.assert_array_equal(one, [1.0, 0.0, 0.0])
    # the same run as a score to maximise picks the same models
    negative = ensemble_selection(candidates, y, score=lambda t, p: -mse(t, p),
                                  greater_is_better=True, rounds=3)
    np.testing.assert_array_equal(negative, weights)


def test_weights_are_counts_over_rounds_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    candidates = [rng.dirichlet(np.ones(3), 120) for _ in range(6)]
    # two candidates that know something, so the mix is not trivial
    candidates[2][np.arange(120), y] += 1.0
    candidates[4][np.arange(120), (y + 1) % 3] += 1.0
    candidates = [c / c.sum(axis=1, keepdims=True) for c in candidates]
    weights = ensemble_selection(candidates, y, score=log_loss, greater_is_better=False,
                                 rounds=20)
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights * 20, np.round(weights * 20), atol=1e-12)
    assert weights.argmax() == 2
    again = ensemble_selection([c.copy() for c in candidates], y.copy(), score=log_loss,
                               greater_is_better=False, rounds=20)
    np.testing.assert_array_equal(weights, again)


def test_a_passed_deadline_stops_after_the_first_round() -> None:
    import time

    y = np.zeros(4)
    candidates = [np.array([0.5, 0.5, -0.5, -0.5]), np.array([0.5, -0.5, 0.5, -0.5])]
    weights = ensemble_selection(candidates, y, score=mse, greater_is_better=False, rounds=50,
                                 deadline=time.monotonic() - 1)
    np.testing.assert_array_equal(weights, [1.0, 0.0])


def test_a_candidate_whose_score_is_nan_is_never_picked() -> None:
    y = np.array([1.0, 2.0])
    candidates = [np.array([np.nan, np.nan]), np.array([1.5, 2.5])]
    weights = ensemble_selection(candidates, y, score=mse, greater_is_better=True, rounds=3)
    np.testing.assert_array_equal(weights, [0.0, 1.0])


def test_select_or_single_keeps_the_single_model_when_the_mix_only_ties() -> None:
    # accuracy of argmax: the mix of 0 and 1 is as accurate as 1 alone, and wins the tie in
    # round 2 by its lower index; it does not beat the single model, so the single is kept
    def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
        return float((proba.argmax(axis=1) == y).mean())

    y = np.array([0, 1])
    weak = np.array([[0.6, 0.4], [0.6, 0.4]])
    strong = np.array([[0.9, 0.1], [0.1, 0.9]])
    mixed = ensemble_selection([weak, strong], y, score=accuracy, greater_is_better=True,
                               rounds=2)
    np.testing.assert_array_equal(mixed, [0.5, 0.5])
    kept = select_or_single([weak, strong], y, score=accuracy, greater_is_better=True, rounds=2)
    np.testing.assert_array_equal(kept, [0.0, 1.0])


def test_select_or_single_keeps_an_ensemble_that_beats_every_member() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    # unbiased, independent errors: their mean halves the error variance
    candidates = [y + rng.normal(size=300), y + rng.normal(size=300)]
    weights = select_or_single(candidates, y, score=mse, greater_is_better=False, rounds=10)
    assert (weights > 0).all()
    assert mse(y, weights @ np.stack(candidates)) < min(mse(y, c) for c in candidates)


@pytest.mark.parametrize("bad, message", [
    ({"predictions": []}, "at least one"),
    ({"predictions": [np.zeros(3), np.zeros(4)]}, "candidate 1"),
    ({"predictions": [np.zeros(4)]}, "rows"),
    ({"rounds": 0}, "rounds"),
])
def test_selection_inputs_are_checked(bad: dict, message: str) -> None:
    arguments = {"predictions": [np.zeros(3)], "y": np.zeros(3), "score": mse,
                 "greater_is_better": False, "rounds": 5, **bad}
    with pytest.raises(InvalidInput, match=message):
        ensemble_selection(**arguments)


def test_classifier_ensemble_is_the_weighted_mean_of_its_members() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    members = [LogisticRegression(max_iter=500).fit(X, y), GaussianNB().fit(X, y),
               DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)]
    model = EnsembleModel(members, [1.5, 0.0, 1.0], task="multiclass",
                          classes=[0, 1, 2])
    # the zero weight is dropped and the rest scaled to sum to 1: 1.5 : 1 → 0.6 : 0.4
    expected = 0.6 * members[0].predict_proba(X) + 0.4 * members[2].predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), expected)
    np.testing.assert_array_equal(model.predict(X), expected.argmax(axis=1))
    assert model.describe() == [
        {"member": 0, "weight": pytest.approx(0.6), "name": "LogisticRegression"},
        {"member": 2, "weight": pytest.approx(0.4), "name": "DecisionTreeClassifier"}]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))


def test_binary_ensemble_predicts_the_positive_class_at_its_threshold() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]
    members = [make_pipeline(StandardScaler(), LogisticRegression()).fit(X, labels),
               DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)]
    model = EnsembleModel(members, [0.7, 0.3], task="binary", classes=["benign", "malignant"],
                          threshold=0.8)
    positive = 0.7 * members[0].predict_proba(X)[:, 1] + 0.3 * members[1].predict_proba(X)[:, 1]
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], positive)
    expected = np.where(positive >= 0.8, "malignant", "benign")
    np.testing.assert_array_equal(model.predict(X), expected)
    assert model.describe()[0]["name"] == "LogisticRegression"  # the pipeline's last step


def test_a_member_that_never_saw_a_class_is_placed_by_label() -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.arange(12, dtype=float).reshape(-1, 1)
    y = np.array(["a", "b", "c"] * 4)
    full = LogisticRegression().fit(X, y)
    partial = LogisticRegression().fit(X[y != "b"], y[y != "b"])
    model = EnsembleModel([full, partial], [0.5, 0.5], task="multiclass",
                          classes=["a", "b", "c"])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 0.5 * full.predict_proba(X)[:, 1])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_regressor_ensemble_is_the_weighted_mean_of_its_members() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    members = [Ridge().fit(X, y), DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y)]
    model = EnsembleModel(members, [0.25, 0.75], task="regression")
    expected = 0.25 * members[0].predict(X) + 0.75 * members[1].predict(X)
    np.testing.assert_allclose(model.predict(X), expected)
    with pytest.raises(InvalidInput, match="no probabilities"):
        model.predict_proba(X)


@pytest.mark.parametrize("arguments, message", [
    ({"weights": [1.0]}, "one weight per member"),
    ({"weights": [0.0, 0.0]}, "positive sum"),
    ({"weights": [1.0, -0.5]}, "≥ 0"),
    ({"task": "ranking"}, "task"),
    ({"task": "binary", "classes": ["yes"]}, "classes"),
])
def test_ensemble_arguments_are_checked(arguments: dict, message: str) -> None:
    given = {"members": [object(), object()], "weights": [0.5, 0.5], "task": "regression",
             **arguments}
    with pytest.raises(InvalidInput, match=message):
        EnsembleModel(given.pop("members"), given.pop("weights"), **given)


def test_on_linear_data_the_ensemble_is_not_worse_held_out_than_the_best_member() -> None:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.tree import DecisionTreeRegressor

    # a linear truth with noise: 200 rows to train on, many to judge on; deep trees overfit.
    # On this seed the selection mixes in a forest (weights .88 / .12), so the margin is used
    rng = np.random.default_rng(4)
    coefficients = np.array([1.5, -2.0, 1.0, 0.5, 0.0])
    X = rng.normal(size=(2200, 5))
    y = X @ coefficients + rng.normal(scale=1.5, size=2200)
    X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:], y[200:]
    candidates = [RidgeCV(alphas=np.logspace(-3, 3, 13)),
                  RandomForestRegressor(n_estimators=40, random_state=0),
                  RandomForestRegressor(n_estimators=40, max_features=1, random_state=1),
                  DecisionTreeRegressor(random_state=0)]
    folds = KFold(5, shuffle=True, random_state=0)
    out_of_fold = [cross_val_predict(c, X_train, y_train, cv=folds) for c in candidates]
    fitted = [c.fit(X_train, y_train) for c in candidates]

    def r2(t: np.ndarray, p: np.ndarray) -> float:
        return float(r2_score(t, p))

    weights = select_or_single(out_of_fold, y_train, score=r2, greater_is_better=True,
                               rounds=25)
    assert weights.sum() == pytest.approx(1.0)
    model = EnsembleModel(fitted, list(weights), task="regression")
    held_out = r2(y_test, model.predict(X_test))
    singles = [r2(y_test, c.predict(X_test)) for c in fitted]
    # the linear model is the right one; the selection must not trade it for overfit trees
    assert singles[0] == max(singles)
    assert held_out >= max(singles) - 0.01
    assert weights[0] >= 0.5
