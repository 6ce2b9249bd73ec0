"""The optional PyTorch MLP trainer follows the same protocol and learns (needs loopml[torch])."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score, r2_score

torch = pytest.importorskip("torch")

from loopml.train.trainers import get_trainer  # noqa: E402


def test_mlp_classifier_learns_and_is_reproducible():
    X, y = make_classification(600, n_features=8, n_informative=5, random_state=0)
    trainer = get_trainer("mlp")
    model = trainer.build(trainer.defaults("binary"), task="binary", seed=3)
    first = model.fit(X[:500], y[:500]).predict_proba(X[500:])
    again = clone(model).fit(X[:500], y[:500]).predict_proba(X[500:])
    np.testing.assert_allclose(first, again, rtol=1e-5)
    assert np.allclose(first.sum(axis=1), 1.0)
    assert accuracy_score(y[500:], first.argmax(1)) > 0.85


def test_mlp_regressor_learns():
    X, y = make_regression(600, n_features=6, noise=5.0, random_state=1)
    trainer = get_trainer("mlp")
    model = trainer.build(trainer.defaults("regression"), task="regression", seed=0)
    assert r2_score(y[500:], model.fit(X[:500], y[:500]).predict(X[500:])) > 0.9
