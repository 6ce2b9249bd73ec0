"""Evaluation judges any object with predict/predict_proba, never imports train/, and
leaves the caller's matplotlib state alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from loopml.evaluate.card import card_json, json_safe


def test_evaluate_takes_a_plain_sklearn_model_and_raw_labels_without_importing_train():
    code = textwrap.dedent("""
        import sys
        import numpy as np, pandas as pd
        from sklearn.linear_model import LogisticRegression
        from loopml.evaluate.report import evaluate

        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"x": rng.normal(size=400), "z": rng.normal(size=400)})
        frame["y"] = np.where(frame.x + 0.3 * rng.normal(size=400) > 0, "yes", "no")
        model = LogisticRegression().fit(frame[["x", "z"]], frame.y)
        out = evaluate(model, frame, frame.y, task="binary", metric="roc_auc",
                       input_columns=["x", "z"], classes=list(model.classes_))
        from sklearn.metrics import roc_auc_score
        expected = roc_auc_score(frame.y == "yes", model.predict_proba(frame[["x", "z"]])[:, 1])
        assert abs(out["metrics"]["roc_auc"] - expected) < 1e-12, out["metrics"]
        assert out["explanations"]["method"] == "permutation"
        assert next(iter(out["explanations"]["importance"])) == "x"
        assert not [m for m in sys.modules if m.startswith("loopml.train")], "imported train"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_labels_the_model_never_saw_are_a_clear_error():
    from sklearn.dummy import DummyClassifier

    from loopml.errors import InvalidInput
    from loopml.evaluate.report import evaluate

    frame = pd.DataFrame({"x": range(20)})
    model = DummyClassifier().fit(frame, ["a", "b"] * 10)
    with pytest.raises(InvalidInput, match="'c'"):
        evaluate(model, frame, ["a", "b", "c", "a"] * 5, task="binary", metric="accuracy",
                 input_columns=["x"], classes=["a", "b"])


def test_rendering_a_card_keeps_the_callers_matplotlib_backend():
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("svg")
        import matplotlib.pyplot as plt
        figure = plt.figure()
        from loopml.evaluate.card import _png
        _png(lambda ax: ax.plot([1, 2], [3, 4]))
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert plt.get_fignums() == [figure.number], plt.get_fignums()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_dollar_signs_in_column_names_do_not_break_plots():
    from loopml.evaluate.card import _plain, _png

    assert _png(lambda ax: ax.barh([_plain("cost $ usd"), _plain("$x$ $")], [1, 2]))


def test_card_json_is_strict_json_with_null_for_undefined_metrics():
    card = {"evaluation": {"metrics": {"roc_auc": float("nan"), "accuracy": np.float64(0.5)},
                           "undefined": {"roc_auc": "the rows hold a single class"}},
            "trials": [{"value": float("-inf")}]}
    text = card_json(card).decode()
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text)
    assert parsed["evaluation"]["metrics"] == {"roc_auc": None, "accuracy": 0.5}
    assert parsed["trials"] == [{"value": None}]
    assert json_safe((1.0, float("nan"))) == [1.0, None]
