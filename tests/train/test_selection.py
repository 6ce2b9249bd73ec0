"""The final model: the trials' out-of-fold library, the ensemble selection over it, the budget."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import ProjectConfig
from loopml.train.budget import Budget
from loopml.train.runner import train_project
from loopml.train.search import SearchResult
from loopml.train.select import select
from loopml.workspace import Workspace


def linear_rows(n: int, seed: int) -> pd.DataFrame:
    """Rows where the target is linear in 8 numbers plus noise: a linear model is right."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    coef = np.array([3.0, -2.0, 1.5, 1.0, -1.0, 0.5, 0.25, 0.0])
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    frame["group"] = rng.choice(["a", "b", "c"], size=n)
    frame["y"] = X @ coef + (frame["group"] == "b") * 1.0 + rng.normal(scale=1.5, size=n)
    return frame


def linear_project(source: Path, **train: object) -> ProjectConfig:
    settings = {"candidates": ["linear", "lightgbm"], "trials": 8,
                "n_jobs": 1, "seed": 2, "metric": "rmse"}
    settings.update(train)
    return ProjectConfig.model_validate({
        "project": {"name": "lin"},
        "data": {"dataset": "lin", "source": str(source), "target": "y",
                 "task": "regression"},
        "train": settings})


@pytest.mark.slow
def test_the_final_model_is_no_worse_than_its_best_member_and_is_their_weighted_mean(
        tmp_path: Path):  # ~20 s
    from sklearn.metrics import mean_squared_error

    source = tmp_path / "lin.csv"
    linear_rows(400, seed=2).to_csv(source, index=False)
    outcome = train_project(linear_project(source, cv_folds=3),
                            workspace=Workspace.from_env(tmp_path / "ws", env={}))
    model, card = outcome.model, outcome.card
    selection = card["model"]["selection"]
    assert selection["library"] >= 2 and selection["rows"] > 0

    held_out = linear_rows(2000, seed=99)  # fresh rows from the same distribution
    truth = held_out["y"].to_numpy()
    final_rmse = mean_squared_error(truth, model.predict(held_out)) ** 0.5
    assert card["model"]["candidate"] == "ensemble"  # deterministic: n_jobs 1, a trial count
    if card["model"]["candidate"] == "ensemble":
        ensemble = model.pipeline
        members = [m.predict(held_out[model.input_columns]) for m in ensemble.members]
        # the ensemble's prediction is the weighted mean of its members', checked directly
        weighted = sum(w * p for w, p in zip(ensemble.weights, members, strict=True))
        np.testing.assert_allclose(model.predict(held_out), weighted, rtol=1e-12, atol=1e-12)
        assert sum(ensemble.weights) == pytest.approx(1.0)
        assert [m["weight"] for m in card["model"]["ensemble"]] == pytest.approx(
            ensemble.weights)
        best_member = min(mean_squared_error(truth, p) ** 0.5 for p in members)
    else:
        best_member = final_rmse
    # the same search with its best single trial as the model (what the argmax picked before)
    alone = train_project(linear_project(source, cv_folds=3, ensemble=False),
                          workspace=Workspace.from_env(tmp_path / "alone", env={}))
    single_rmse = mean_squared_error(truth, alone.model.predict(held_out)) ** 0.5
    # no worse than the best member or the best single trial, less noise (2 % of the RMSE
    # on 2,000 fresh rows)
    assert final_rmse <= best_member * 1.02
    assert final_rmse <= single_rmse * 1.02


def test_the_library_holds_each_complete_trials_out_of_fold_predictions(tmp_path: Path):
    """A trial's stored predictions are its fold models' (each refitted here on the fold's
    rows), averaged over the repeats of the folds (300 rows: 5-fold CV, 3 times)."""
    from loopml.data import Catalog
    from loopml.train.plan import make_plan
    from loopml.train.search import SearchJob, fit_pipeline

    source = tmp_path / "lin.csv"
    linear_rows(300, seed=4).to_csv(source, index=False)
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    config = linear_project(source, candidates=["linear"], trials=1)
    outcome = train_project(config, workspace=workspace)
    (number, stored), = outcome.search.library.items()
    assert number == 0 and outcome.card["model"]["selection"]["library"] == 1

    plan = make_plan(config, Catalog.from_workspace(workspace))
    assert len(plan.folds) == 15 and stored.shape == (len(plan.y),)
    job = SearchJob(X=plan.X, y=plan.y, folds=plan.folds, features=plan.features,
                    task=plan.task, metric=plan.metric, labels=[], candidates=["linear"],
                    search_space={}, encoding="auto", seed=2, workspace=workspace,
                    project="lin", parent_run_id="")
    total, count = np.zeros(len(plan.y)), np.zeros(len(plan.y))
    params = outcome.search.best_params
    for train_rows, valid_rows in plan.folds:
        fold = fit_pipeline(job, "linear", params, plan.X.iloc[train_rows], plan.y[train_rows])
        total[valid_rows] += fold.predict(plan.X.iloc[valid_rows])
        count[valid_rows] += 1
    assert (count == 3).all()
    np.testing.assert_allclose(stored, total / count, rtol=1e-5, atol=1e-5)  # stored float32


def fake_result(library: dict[int, np.ndarray], seconds: dict[int, float],
                values: dict[int, float]) -> SearchResult:
    trials = [{"number": n, "state": "COMPLETE", "value": values[n], "model": f"m{n}",
               "params": {}, "found": {}, "seconds": seconds[n]} for n in library]
    return SearchResult("m0", {}, values[0], trials, library=library)


def test_selection_averages_complementary_trials_and_keeps_a_single_one_otherwise():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    high, low, far = y + 1.0, y - 1.0, y + 5.0
    result = fake_result({0: high, 1: low, 2: far}, {0: 1, 1: 1, 2: 1}, {0: 1, 1: 1, 2: 5})
    chosen = select(result, y, task="regression", metric="rmse", labels=[], seed=0)
    assert chosen.kept == "ensemble" and chosen.numbers == [0, 1]
    assert chosen.weights == pytest.approx([0.52, 0.48]) or chosen.weights == pytest.approx(
        [0.48, 0.52])
    assert chosen.ensemble_score < chosen.best_single_score
    single = select(result, y, task="regression", metric="rmse", labels=[], seed=0,
                    ensemble=False)
    assert single.kept == "single" and single.numbers == [0] and single.weights == [1.0]


def test_selection_drops_members_whose_refit_would_not_fit_the_budget():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    result = fake_result({0: y + 1.0, 1: y - 1.0, 2: y - 1.1}, {0: 1, 1: 1, 2: 1},
                         {0: 1, 1: 1, 2: 1.1})
    costs = {0: 1.0, 1: 50.0, 2: 1.0}  # trial 1's refit alone would take 50 s
    chosen = select(result, y, task="regression", metric="rmse", labels=[], seed=0,
                    refit_seconds=costs, time_left=5.0)
    assert 1 in chosen.dropped and 1 not in chosen.numbers
    assert chosen.numbers == [0, 2] and chosen.kept == "ensemble"


def test_a_binary_selection_blends_probabilities_for_the_threshold():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.column_stack([1 - (0.3 + 0.4 * y), 0.3 + 0.4 * y])
    noisy = np.clip(good + rng.normal(scale=0.3, size=(200, 1)) * [[1, -1]], 0.01, 0.99)
    result = fake_result({0: good, 1: noisy}, {0: 1, 1: 1}, {0: 1, 1: 0.8})
    chosen = select(result, y, task="binary", metric="roc_auc", labels=[0, 1], seed=0)
    assert chosen.blended.shape == (200, 2)
    np.testing.assert_allclose(chosen.blended.sum(axis=1), 1.0)


def test_the_budget_sees_a_search_that_has_converged():
    budget = Budget(60, time.perf_counter(), folds=5, direction=-1)  # rmse: lower is better

    def summary(values: list[float]) -> SearchResult:
        trials = [{"number": i, "state": "COMPLETE", "value": v, "model": "m", "params": {},
                   "seconds": 0.1} for i, v in enumerate(values)]
        return SearchResult("m", {}, min(values), trials)

    improving = [10.0 - 0.1 * i for i in range(40)]
    flat = [10.0 - 0.1 * i for i in range(15)] + [8.6] * 25
    assert not budget.has_converged(summary(improving))
    assert not budget.has_converged(summary(flat[:20]))  # too few trials to say
    assert budget.has_converged(summary(flat))
    assert budget.should_stop(summary(flat)) and budget.converged and not budget.stopped


def test_the_card_says_whether_an_ensemble_converts_to_onnx(tmp_path: Path):
    """A trial-count run (no budget) always checks; the card's HTML says the result."""
    from loopml.demo_data import make_credit

    source = tmp_path / "credit.csv"
    make_credit(600, seed=2).to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "onnx"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "pii": {"email": "hash"}},
        "train": {"candidates": ["linear", "lightgbm"], "trials": 6, "n_jobs": 1, "seed": 1,
                  "cv_folds": 3}})
    outcome = train_project(config, workspace=Workspace.from_env(tmp_path / "ws", env={}))
    model = outcome.card["model"]
    assert model["candidate"] == "ensemble"  # deterministic: n_jobs 1, a trial count
    assert model["onnx"]["checked"] and model["onnx"]["exports"]
    assert "every member converts" in outcome.card_path.read_text()


def test_a_trial_whose_refit_alone_overruns_the_budget_is_not_the_model():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    result = fake_result({0: y + 0.1, 1: y + 2.0}, {0: 1, 1: 1}, {0: 0.1, 1: 2.0})
    chosen = select(result, y, task="regression", metric="rmse", labels=[], seed=0,
                    refit_seconds={0: 30.0, 1: 1.0}, time_left=5.0)
    assert chosen.numbers == [1] and chosen.dropped == [0]
    # when none fits, the cheapest refit is kept
    chosen = select(result, y, task="regression", metric="rmse", labels=[], seed=0,
                    refit_seconds={0: 30.0, 1: 10.0}, time_left=5.0)
    assert chosen.numbers == [1]


def slow_forest_project(source: Path, *, budget: float, n_jobs: int, folds: int,
                        trees: tuple[int, int] = (600, 800),
                        candidates: tuple[str, ...] = ("random_forest",)) -> ProjectConfig:
    return ProjectConfig.model_validate({
        "project": {"name": "slow"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "pii": {"email": "hash"}},
        "train": {"candidates": list(candidates), "trials": None, "time_budget_s": budget,
                  "n_jobs": n_jobs, "seed": 1, "cv_folds": folds,
                  # deep forests of many trees: one fold takes seconds
                  "search_space": {"random_forest": {
                      "n_estimators": {"low": trees[0], "high": trees[1], "int": True},
                      "min_samples_leaf": {"low": 1, "high": 2, "int": True}}}}})


@pytest.mark.slow
def test_a_budget_too_short_for_one_whole_trial_still_gives_a_model(tmp_path: Path):  # ~15 s
    from loopml.demo_data import make_credit

    source = tmp_path / "credit.csv"
    make_credit(4000, seed=5).to_csv(source, index=False)
    outcome = train_project(slow_forest_project(source, budget=4, n_jobs=1, folds=10),
                            workspace=Workspace.from_env(tmp_path / "ws", env={}))
    first = outcome.search.trials[0]
    # the deadline came during the first trial: its folds so far are the answer, not an error
    assert first["state"] == "COMPLETE"
    assert outcome.card["model"]["candidate"] == "random_forest"
    assert outcome.card["evaluation"]["metrics"]["roc_auc"] > 0.5
    library = outcome.search.library[first["number"]]
    assert np.isnan(library).any() and not np.isnan(library).all()  # some folds, not all


@pytest.mark.slow
def test_asking_the_search_to_stop_ends_the_running_trials_of_worker_processes(
        tmp_path: Path):  # ~20 s
    from loopml.demo_data import make_credit
    from loopml.tracking import TrackingClient

    source = tmp_path / "credit.csv"
    make_credit(25_000, seed=5).to_csv(source, index=False)
    workspace = Workspace.from_env(tmp_path / "ws", env={})
    # the linear model finishes at once; a forest of 600+ deep trees on 21,000 rows cannot
    # finish before the stop, so it is running when the stop is asked
    outcome = train_project(slow_forest_project(source, budget=12, n_jobs=2, folds=2,
                                                candidates=("linear", "random_forest")),
                            workspace=workspace)
    timings = outcome.card["timings"]
    assert timings["stopped_for_reserve"] or timings["converged"]
    states = [t["state"] for t in outcome.search.trials]
    assert "COMPLETE" in states
    # the trials running when the stop was asked were interrupted, not left to finish
    assert "FAIL" in states
    client = TrackingClient.from_workspace(workspace)
    statuses = {r.status for r in client.list_runs(parent_id=outcome.run_id, limit=None)}
    assert "KILLED" in statuses and "RUNNING" not in statuses


def test_the_refit_is_built_as_its_trials_folds_were(tmp_path: Path):
    """Defaults and a trainer's constants reach the refit, not only the sampled parameters;
    the tree count is the one the folds' early stopping found."""
    from loopml.demo_data import make_credit
    from loopml.train.trainers import get_trainer

    source = tmp_path / "credit.csv"
    make_credit(600, seed=2).to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "refit"},
        "data": {"dataset": "credit", "source": str(source), "target": "default",
                 "pii": {"email": "hash"}},
        "train": {"candidates": ["lightgbm"], "trials": 2, "n_jobs": 1, "seed": 1,
                  "cv_folds": 3, "ensemble": False,
                  "search_space": {"lightgbm": {"num_leaves": {"low": 4, "high": 8,
                                                               "int": True}}}}})
    outcome = train_project(config, workspace=Workspace.from_env(tmp_path / "ws", env={}))
    refit = outcome.model.pipeline.named_steps["model"].get_params()
    trial = next(t for t in outcome.search.trials
                 if t["number"] == outcome.card["model"]["selection"]["best_single_trial"])
    defaults = get_trainer("lightgbm").defaults("binary")
    # not sampled, yet what the folds used: LightGBM's own defaults would differ
    assert refit["learning_rate"] == defaults["learning_rate"] != 0.1
    assert refit["subsample_freq"] == defaults["subsample_freq"] == 1
    assert 4 <= refit["num_leaves"] <= 8
    assert refit["n_estimators"] == trial["found"]["n_estimators"] < defaults["n_estimators"]


def test_a_candidate_with_no_complete_trial_is_tried_once_more_then_left_out():
    import optuna

    from loopml.train.search import SearchJob, choose_candidate

    job = SearchJob(X=None, y=np.zeros(1), folds=[], features=None, task="binary",
                    metric="roc_auc", labels=[0, 1], candidates=["lightgbm", "random_forest"],
                    search_space={}, encoding="auto", seed=0, workspace=None, project="p",
                    parent_run_id="")

    def trial(model: str, state, value=None):
        return optuna.trial.create_trial(state=state, value=value, params={},
                                         distributions={}, user_attrs={"model": model})

    states = optuna.trial.TrialState
    good = trial("lightgbm", states.COMPLETE, 0.8)
    once = [good, trial("random_forest", states.FAIL)]
    twice = once + [trial("random_forest", states.PRUNED)]
    assert choose_candidate(job, once, seed=1) == "random_forest"  # one more try
    assert {choose_candidate(job, twice, seed=s) for s in range(20)} == {"lightgbm"}


def test_a_fold_without_the_rare_class_does_not_void_every_trial(tmp_path: Path):
    """ROC-AUC is undefined on a fold with one class; the pooled out-of-fold score is not."""
    from loopml.demo_data import make_credit

    frame = make_credit(300, seed=3)
    frame["default"] = 0
    frame.loc[frame.index[:5], "default"] = 1  # 4 of them in the search rows: 5 folds
    source = tmp_path / "rare.csv"
    frame.to_csv(source, index=False)
    config = ProjectConfig.model_validate({
        "project": {"name": "rare"},
        "data": {"dataset": "rare", "source": str(source), "target": "default",
                 "pii": {"email": "hash"}},
        "train": {"candidates": ["linear"], "trials": 1, "n_jobs": 1, "seed": 1}})
    outcome = train_project(config, workspace=Workspace.from_env(tmp_path / "ws", env={}))
    assert outcome.search.trials[0]["state"] == "COMPLETE"
    assert np.isfinite(outcome.search.best_score)
