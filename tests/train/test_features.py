"""Task inference, feature inference and the preprocessing inside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.config import FeaturesSection
from loopml.errors import InvalidInput
from loopml.train.features import FeatureSet, build_preprocessor, infer_features
from loopml.train.task import infer_task, resolve_metric


@pytest.mark.parametrize(
    ("values", "task"),
    [([0, 1, 0, 1], "binary"), (["yes", "no", "yes"], "binary"), ([1, 2, 3, 2, 1], "multiclass"),
     (["a", "b", "c"], "multiclass"), ([0.5, 1.25, 3.0, 2.2], "regression"),
     (list(range(100)), "regression")],
)
def test_task_inference(values, task):
    assert infer_task(pd.Series(values, name="y")) == task


def test_task_inference_refuses_what_cannot_be_learned():
    with pytest.raises(InvalidInput, match="single value"):
        infer_task(pd.Series([1, 1, 1], name="y"))
    with pytest.raises(InvalidInput, match="too many classes"):
        infer_task(pd.Series([f"v{i}" for i in range(200)], name="y"))
    with pytest.raises(InvalidInput, match="'rmse' does not fit a binary task"):
        resolve_metric("binary", "rmse")


def test_feature_inference_drops_ids_free_text_target_and_sensitive():
    from loopml.demo_data import make_credit

    frame = make_credit(300)
    features = infer_features(frame, target="default", spec=FeaturesSection(),
                              sensitive=["gender"])
    assert features.numeric == ["age", "income", "debt", "years_at_address"]
    assert features.categorical == ["employment", "city"]
    assert set(features.dropped) == {"default", "gender", "customer_id", "email"}
    with_sensitive = infer_features(frame, target="default",
                                    spec=FeaturesSection(use_sensitive=True),
                                    sensitive=["gender"])
    assert "gender" in with_sensitive.categorical
    with pytest.raises(InvalidInput, match=r"\['nope'\]"):
        infer_features(frame, target="default", spec=FeaturesSection(drop=["nope"]),
                       sensitive=[])


def test_preprocessing_takes_raw_rows_with_missing_unknown_and_dates():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x": rng.normal(size=200),
        "c": rng.choice(["a", "b"], 200),
        "many": [f"k{i % 60}" for i in range(200)],
        "t": pd.date_range("2024-01-01", periods=200, freq="D"),
    })
    frame.loc[::10, "x"] = np.nan
    frame.loc[::7, "c"] = None
    y = (rng.random(200) > 0.5).astype(int)
    features = FeatureSet(numeric=["x"], categorical=["c", "many"], datetime=["t"])
    for tree_based in (True, False):
        pre = build_preprocessor(features, frame, tree_based=tree_based)
        out = pre.fit_transform(frame, y)
        assert np.isfinite(np.asarray(out, dtype=float)).all()
        names = list(pre.get_feature_names_out())
        assert "datetime__t_month" in names and "high_cardinality__many" in names
        unseen = frame.head(3).assign(c=["zzz", None, "a"], many=["new", "k1", None],
                                      x=[np.nan, 1.0, 2.0])
        assert np.isfinite(np.asarray(pre.transform(unseen), dtype=float)).all()
    scaled = build_preprocessor(features, frame, tree_based=False).fit_transform(frame, y)
    assert abs(float(np.asarray(scaled)[:, 0].mean())) < 1e-9  # linear models get scaling


def test_a_fold_without_a_rare_class_still_scores_every_class():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from loopml.train.search import full_proba

    X = pd.DataFrame({"x": np.arange(30, dtype=float)})
    y_fold = np.array([0] * 15 + [2] * 15)  # class 1 missing from this fold
    pipeline = make_pipeline(LogisticRegression()).fit(X, y_fold)
    proba = full_proba(pipeline, X, 3)
    assert proba.shape == (30, 3) and np.allclose(proba[:, 1], 0.0)
    assert np.allclose(proba.sum(axis=1), 1.0)
