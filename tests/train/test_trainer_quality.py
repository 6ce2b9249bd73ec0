"""Trainers that find their own capacity: boosters stop early, linear models walk a path.

The boosters (LightGBM, XGBoost, histogram gradient boosting) stop on a fold's validation
rows; the count they return is checked against the validation loss recomputed with
scikit-learn's metrics from the library's own staged predictions, and the refit with that
count against the early-stopped model. The linear trainers choose alpha / C themselves; the
choice is checked against a leave-one-out computed by hand (ridge) and plain logistic fits
on the same folds (logistic), and both export to ONNX with parity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.train.trainers import get_trainer
from loopml.train.trainers.early_stopping import ROUNDS

BOOSTERS = {"lightgbm": ("n_estimators", 2000), "xgboost": ("n_estimators", 2000),
            "hist_gradient_boosting": ("max_iter", 1000)}
TASKS = ("binary", "multiclass", "regression")


@pytest.fixture(autouse=True)
def one_thread():
    """Run native code on one thread: OpenMP's spinning threads crawl on a busy 2-core box."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def make_rows(task: str, n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a float matrix with holes and a noisy target: boosting overfits it quickly."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random((n, 5)) < 0.05] = np.nan
    signal = np.nan_to_num(X[:, 0]) + np.sin(2 * np.nan_to_num(X[:, 1]))
    noisy = signal + rng.normal(size=n)
    if task == "binary":
        return X, (noisy > 0).astype(int)
    if task == "multiclass":
        return X, np.digitize(noisy, [-0.7, 0.7])
    return X, noisy


def fold(task: str) -> tuple[np.ndarray, ...]:
    """Return training and validation rows; multiclass validation rows lack class 2."""
    X, y = make_rows(task, 500, seed=1)
    X_valid, y_valid = make_rows(task, 200, seed=2)
    if task == "multiclass":
        keep = y_valid != 2
        X_valid, y_valid = X_valid[keep], y_valid[keep]
    return X, y, X_valid, y_valid


def stages(estimator: object, name: str, X: np.ndarray) -> object:
    """Return a function giving the booster's predictions after its first i trees."""
    if name == "lightgbm":
        return lambda i: estimator.booster_.predict(X, num_iteration=i)
    if name == "xgboost":
        import xgboost

        matrix = xgboost.DMatrix(X, missing=np.nan)
        return lambda i: estimator.get_booster().predict(matrix, iteration_range=(0, i))
    staged = list(estimator.staged_predict_proba(X) if hasattr(estimator, "predict_proba")
                  else estimator.staged_predict(X))
    return lambda i: staged[i - 1]


def validation_loss(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import log_loss, mean_squared_error

    if task == "regression":
        return mean_squared_error(y, predicted)
    if predicted.ndim == 1:  # a binary booster gives the probability of class 1
        predicted = np.column_stack([1 - predicted, predicted])
    return log_loss(y, predicted, labels=list(range(predicted.shape[1])))


def answers(estimator: object, task: str, X: np.ndarray) -> np.ndarray:
    return estimator.predict(X) if task == "regression" else estimator.predict_proba(X)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(BOOSTERS))
def test_a_booster_stops_at_its_best_validation_loss_and_the_refit_repeats_it(name, task):
    trainer = get_trainer(name)
    key, cap = BOOSTERS[name]
    X, y, X_valid, y_valid = fold(task)
    params = {**trainer.defaults(task), "learning_rate": 0.2}
    assert params[key] == cap
    estimator = trainer.build(params, task=task, seed=3)

    found = trainer.fit_early_stopping(estimator, X, y, X_valid, y_valid)

    assert list(found) == [key]
    best = found[key]
    assert 1 <= best < cap
    # the reference: the same booster grown ROUNDS trees past the best, without stopping
    grown = min(best + ROUNDS, cap)
    reference = trainer.build({**params, key: grown}, task=task, seed=3).fit(X, y)
    stage = stages(reference, name, X_valid)
    losses = np.array([validation_loss(task, y_valid, stage(i)) for i in range(1, grown + 1)])
    assert losses[best - 1] <= losses.min() + 1e-9  # no lower validation loss within ROUNDS

    # the fitted estimator answers as the library's own model cut at the best iteration
    native = answers(estimator, task, X_valid)
    at_best = stage(best) if name == "hist_gradient_boosting" else \
        stages(estimator, name, X_valid)(best)
    np.testing.assert_allclose(native[:, 1] if at_best.ndim == 1 < native.ndim else native,
                               at_best, rtol=1e-6, atol=1e-7)

    # the refit (build with the count found, no early stopping) is that model, every time,
    # and the estimator's own parameters say so (a clone of it fits as the refit)
    refits = [trainer.build({**params, **found}, task=task, seed=3).fit(X, y) for _ in range(2)]
    assert repr(sorted(estimator.get_params().items())) == \
        repr(sorted(refits[0].get_params().items()))  # repr: xgboost's missing is NaN
    np.testing.assert_array_equal(answers(refits[0], task, X_valid),
                                  answers(refits[1], task, X_valid))
    np.testing.assert_allclose(answers(refits[0], task, X_valid), native, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(BOOSTERS))
def test_validation_rows_of_a_class_the_fold_never_trained_on_are_left_out(name):
    trainer = get_trainer(name)
    X, y = make_rows("binary", 300, seed=4)  # classes 0 and 1 only
    X_valid, y_valid = make_rows("multiclass", 120, seed=5)  # 0, 1 and 2
    estimator = trainer.build({**trainer.defaults("binary"), "learning_rate": 0.3},
                              task="binary", seed=0)

    found = trainer.fit_early_stopping(estimator, X, y, X_valid, y_valid)

    key, cap = BOOSTERS[name]
    assert 1 <= found[key] < cap
    assert estimator.predict_proba(X_valid).shape == (len(X_valid), 2)


@pytest.mark.parametrize("name", list(BOOSTERS))
def test_the_tree_count_is_found_not_searched_unless_the_user_searches_it(name, tmp_path):
    import optuna

    from loopml.config import ProjectConfig
    from loopml.train.plan import check_without_data

    key, cap = BOOSTERS[name]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = get_trainer(name).suggest(trial, "binary")
    assert params[key] == cap and f"{name}.{key}" not in trial.params

    # a user's range for it is still a parameter the estimator takes
    config = ProjectConfig.model_validate({
        "project": {"name": "p"},
        "data": {"dataset": "d", "source": str(tmp_path / "d.csv"), "target": "y"},
        "train": {"candidates": [name], "search_space": {
            name: {key: {"low": 20, "high": 200, "int": True}}}}})
    check_without_data(config)


# -- linear models with a regularisation path --------------------------------------------------

def one_hot_rows(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return scaled numbers and one-hot categories (a linear model's matrix) and a signal."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, 6))
    groups = rng.integers(0, 8, n)
    X = np.column_stack([numbers, np.eye(8)[groups]])
    signal = numbers @ np.array([1.0, -0.8, 0.5, 0.0, 0.0, 0.3]) + 0.4 * (groups % 3)
    return X, signal + rng.normal(scale=1.5, size=n)


def loo_alpha(X: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> float:
    """Return the alpha of the lowest leave-one-out squared error, from the hat matrix.

    With an unpenalised intercept the fitted values are ``H y`` with
    ``H = 11'/n + Xc (Xc'Xc + alpha I)^-1 Xc'``; a row's leave-one-out residual is its
    residual divided by ``1 - H_ii``.
    """
    n = len(y)
    Xc = X - X.mean(axis=0)
    errors = []
    for alpha in alphas:
        H = np.full((n, n), 1 / n) + Xc @ np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]),
                                                          Xc.T)
        residual = (y - H @ y) / (1 - np.diag(H))
        errors.append(np.mean(residual ** 2))
    return float(alphas[int(np.argmin(errors))])


def test_ridge_chooses_the_alpha_of_the_lowest_leave_one_out_error():
    from sklearn.linear_model import RidgeCV

    trainer = get_trainer("linear")
    assert trainer.defaults("regression") == {} and trainer.suggest(None, "regression") == {}
    alphas = np.logspace(-3, 3, 13)
    for seed, n in ((0, 60), (1, 300)):
        X, y = one_hot_rows(n, seed=seed)

        model = trainer.build({}, task="regression", seed=seed).fit(X, y)

        assert model.alpha_ == pytest.approx(loo_alpha(X, y, alphas))
        assert model.alpha_ == RidgeCV(alphas=alphas).fit(X, y).alpha_


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_logistic_chooses_the_c_of_the_lowest_log_loss_on_three_folds(task):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    X, signal = one_hot_rows(240, seed=3)
    y = (signal > 0).astype(int) if task == "binary" else np.digitize(signal, [-1.0, 1.0])
    Cs = np.logspace(-3, 2, 6)
    losses = []
    for C in Cs:  # plain fits, one per C and fold, cold-started
        losses.append(np.mean([
            log_loss(y[test], LogisticRegression(C=C, max_iter=5000, tol=1e-8)
                     .fit(X[train], y[train]).predict_proba(X[test]), labels=np.unique(y))
            for train, test in StratifiedKFold(3).split(X, y)]))
    gaps = np.sort(losses)
    assert gaps[1] - gaps[0] > 1e-3  # a clear winner, so solver tolerance cannot flip it

    for name in ("logistic", "linear"):
        trainer = get_trainer(name)
        assert trainer.defaults(task) == {} and trainer.suggest(None, task) == {}
        model = trainer.build({}, task=task, seed=0).fit(X, y)

        assert float(np.ravel(model.C_)[0]) == pytest.approx(Cs[int(np.argmin(losses))])
        reference = LogisticRegressionCV(Cs=Cs, cv=3, scoring="neg_log_loss", max_iter=2000,
                                         l1_ratios=(0.0,), use_legacy_attributes=False).fit(X, y)
        assert float(np.ravel(model.C_)[0]) == pytest.approx(reference.C_)
        np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X))


def test_a_user_search_space_names_the_path_estimators_parameters(tmp_path):
    from loopml.config import ProjectConfig
    from loopml.errors import InvalidInput
    from loopml.train.plan import check_without_data

    def config(space: dict) -> ProjectConfig:
        return ProjectConfig.model_validate({
            "project": {"name": "p"},
            "data": {"dataset": "d", "source": str(tmp_path / "d.csv"), "target": "y",
                     "task": "binary"},
            "train": {"candidates": ["logistic"], "search_space": {"logistic": space}}})

    check_without_data(config({"Cs": {"choices": [4, 8]}}))
    with pytest.raises(InvalidInput, match=r"unknown parameter 'C'; logistic "
                                           r"\(LogisticRegressionCV, binary\) takes: Cs, "):
        check_without_data(config({"C": {"low": 0.1, "high": 10}}))
    model = get_trainer("logistic").build({"Cs": 4, "cv": 2}, task="binary", seed=0)
    assert (model.Cs, model.cv) == (4, 2)


def frame_rows(n: int, *, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["north", "south", "east", "west", "centre"], n).astype(object)
    income = rng.lognormal(10, 0.4, n)
    age = rng.normal(40, 12, n)
    signal = (income - 24000) / 9000 + (age - 40) / 15 + (city == "north") - (city == "west")
    frame = pd.DataFrame({"income": income, "age": age, "city": city})
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    noisy = signal + rng.normal(size=n)
    frame["default"] = (noisy > 0).astype(int)
    frame["grade"] = np.array(["low", "mid", "high"])[np.digitize(noisy, [-0.6, 0.6])]
    frame["amount"] = signal * 50 + rng.normal(size=n) * 20
    return frame


@pytest.mark.parametrize(("name", "task", "target", "kind"), [
    ("logistic", "binary", "default", "LogisticRegressionCV"),
    ("logistic", "multiclass", "grade", "LogisticRegressionCV"),
    ("linear", "regression", "amount", "RidgeCV"),
])
def test_the_path_models_export_to_onnx_with_parity(name, task, target, kind):
    from sklearn.pipeline import Pipeline

    from loopml.optimize.export import to_onnx
    from loopml.optimize.parity import check_parity
    from loopml.optimize.runtime import OnnxModel
    from loopml.train.features import FeatureSet, build_preprocessor
    from loopml.train.model import TrainedModel

    features = FeatureSet(numeric=["income", "age"], categorical=["city"])
    frame = frame_rows(400, seed=0)
    X, y = frame[features.columns], frame[target]
    classes = sorted(y.unique().tolist()) if task != "regression" else []
    encoded = y.map({c: i for i, c in enumerate(classes)}).to_numpy() if classes else \
        y.to_numpy()
    trainer = get_trainer(name)
    pipeline = Pipeline([
        ("features", build_preprocessor(features, X, tree_based=False, encoding="auto",
                                        task=task)),
        ("model", trainer.build(trainer.defaults(task), task=task, seed=0)),
    ]).fit(X, encoded)
    assert type(pipeline[-1]).__name__ == kind
    native = TrainedModel(pipeline=pipeline, task=task, target=target,
                          input_columns=features.columns, classes=classes, threshold=0.5,
                          candidate=name)
    exported = OnnxModel.from_bytes(to_onnx(native))
    rows = frame_rows(200, seed=1)
    rows.loc[:3, "city"] = "never seen"

    parity = check_parity(native, exported, rows)

    assert parity.passed, parity.detail
    if task == "regression":
        np.testing.assert_allclose(exported.predict(rows), native.predict(rows),
                                   atol=parity.tolerance)
    else:
        np.testing.assert_allclose(exported.predict_proba(rows), native.predict_proba(rows),
                                   atol=1e-6)
