"""The PyTorch MLP trainer follows the same protocol, learns, and runs in a search.

torch is part of the test environment (`make test` installs it on Python 3.11, where its CPU
build lies on disk), so these tests run: a candidate the config accepts is a candidate CI
trains. CI sets LOOPML_REQUIRE_TORCH=1, which turns a missing torch into a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("LOOPML_REQUIRE_TORCH") != "1":
    pytest.importorskip("torch", reason="torch is not installed (make test adds it on 3.11)")
import torch  # noqa: E402, F401  (with LOOPML_REQUIRE_TORCH=1 a missing torch fails here)
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score, r2_score

from loopml.train.trainers import get_trainer


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


def test_mlp_candidate_trains_through_the_search(credit_file, workspace):
    import sys
    from pathlib import Path

    from loopml.train.runner import train_project

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import project

    few_epochs = {"mlp": {"epochs": {"choices": [10]}}}
    outcome = train_project(project(credit_file, candidates=["mlp"], trials=1, cv_folds=2,
                                    search_space=few_epochs), workspace=workspace)
    assert outcome.search.best_candidate == "mlp"
    assert outcome.card["evaluation"]["metrics"]["roc_auc"] > 0.6
