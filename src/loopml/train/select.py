"""The final model: greedy ensemble selection over the search's trials, refitted on all rows.

The search leaves each complete trial's out-of-fold predictions (its library, see
:func:`loopml.train.search.load_library`). The selection (:mod:`loopml.train.ensemble`) weighs
them; the ensemble is kept only when its out-of-fold score beats the best single trial's,
else that single trial is the model. Members whose refit would not fit in what the budget
leaves are taken out of the library and the selection is run again, so the command keeps
its budget. A binary model's threshold is chosen on the blended out-of-fold probabilities:
no extra fit, and every search row counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from loopml.train.model import TrainedModel
    from loopml.train.plan import TrainPlan
    from loopml.train.search import SearchJob, SearchResult

ROUNDS = 25  # picks with replacement: weights are multiples of 1/25
MAX_ROWS = 20_000  # the selection scores every library member each round; sample above this
SELECT_SHARE = 0.05  # of the budget, at most, for the selection itself (at least 1 s)
METHOD = "greedy ensemble selection with replacement (Caruana et al. 2004)"


@dataclass
class Selection:
    """What the selection chose, for the refit and the card."""

    numbers: list[int]  # the trial numbers of the members (weight > 0), library order
    weights: list[float]
    kept: str  # "ensemble" or "single"
    score: float  # the out-of-fold score of what was kept
    best_single: int
    best_single_score: float
    ensemble_score: float
    library: int
    rounds: int
    rows: int  # the out-of-fold rows scored
    dropped: list[int]  # trials taken out because their refit would not fit in the budget
    blended: np.ndarray  # the kept model's out-of-fold predictions (for the threshold)
    y: np.ndarray


def select(result: SearchResult, y: np.ndarray, *, task: str, metric: str, labels: list[int],
           seed: int, refit_seconds: dict[int, float] | None = None,
           time_left: float | None = None, ensemble: bool = True) -> Selection | None:
    """Return the selection over ``result.library``, or None when the library is empty.

    ``refit_seconds`` (trial → estimated seconds of its refit on all rows) and ``time_left``
    (seconds the refits may take) bound the members: a trial whose refit alone takes longer
    leaves the library first (if every one does, only the cheapest stays); then, while the
    chosen members' refits add up to more, the dearest member of the lowest weight leaves and
    the selection runs again. ``ensemble=False`` keeps the best single trial.
    """
    import numpy as np

    from loopml.evaluate.metrics import get_metric, score
    from loopml.train.ensemble import ensemble_selection

    if not result.library:
        return None
    numbers = sorted(result.library)
    stacked = np.stack([np.asarray(result.library[n], dtype=float) for n in numbers])
    if task != "regression":  # stored as float32: make each row sum to 1 again
        stacked = stacked / stacked.sum(axis=2, keepdims=True)
    flat = stacked.reshape(len(numbers), len(y), -1)
    covered = ~np.isnan(flat).any(axis=(0, 2))  # rows some fold predicted, for every trial
    rows = _sample_rows(np.flatnonzero(covered), np.asarray(y), task=task, seed=seed)
    library = stacked[:, rows]
    truth = np.asarray(y)[rows]

    def metric_of(actual: np.ndarray, predicted: np.ndarray) -> float:
        if task == "regression":
            return score(metric, actual, predicted, None, labels=labels)
        return score(metric, actual, predicted.argmax(axis=1), predicted, labels=labels)

    sign = 1.0 if get_metric(metric).direction > 0 else -1.0

    def ranked(value: float) -> float:  # NaN (a metric undefined here) loses
        return sign * value if value == value else -np.inf

    singles = [metric_of(truth, candidate) for candidate in library]
    # the search's best trial wins a tie of undefined scores (NaN everywhere), not index 0
    search_best = numbers.index(_best_number(result)) if _best_number(result) in numbers else 0
    started = time.monotonic()
    allowed = None if time_left is None else max(1.0, SELECT_SHARE * time_left)
    active = list(range(len(numbers)))
    dropped: list[int] = []
    if time_left is not None and refit_seconds is not None:
        # a trial whose refit alone would overrun the budget cannot be the model; if none
        # fits, the cheapest refit is kept (the budget is overrun by the least possible)
        fits = [i for i in active if refit_seconds.get(numbers[i], 0.0) <= time_left]
        kept = fits or [min(active, key=lambda i: (refit_seconds.get(numbers[i], 0.0), i))]
        dropped = [numbers[i] for i in active if i not in kept]
        active = kept
    while True:
        deadline = None if allowed is None else started + allowed
        weights = ensemble_selection([library[i] for i in active], truth, score=metric_of,
                                     greater_is_better=sign > 0,
                                     rounds=ROUNDS if ensemble else 1, deadline=deadline)
        mixed = [(active[i], float(w)) for i, w in enumerate(weights) if w > 0]
        ensemble_score = metric_of(truth, sum(w * library[i] for i, w in mixed))
        best = max(active, key=lambda i: (ranked(singles[i]), i == search_best, -i))
        # the ensemble only when it beats the best single trial out of fold by more than
        # rounding (two trials of equal predictions are no ensemble)
        margin = 1e-9 * max(abs(singles[best]), 1.0) if singles[best] == singles[best] else 0
        chosen = mixed if ensemble and ranked(ensemble_score) > ranked(singles[best]) + margin \
            else [(best, 1.0)]
        cost = sum((refit_seconds or {}).get(numbers[i], 0.0) for i, _ in chosen)
        if time_left is None or refit_seconds is None or len(chosen) == 1 or cost <= time_left:
            break
        # the lowest weight goes first; among equals, the dearest refit
        leaving = min(chosen, key=lambda c: (c[1], -refit_seconds.get(numbers[c[0]], 0.0)))[0]
        active.remove(leaving)
        dropped.append(numbers[leaving])

    full = sum(w * stacked[i] for i, w in chosen)[covered]
    return Selection(
        numbers=[numbers[i] for i, _ in chosen], weights=[w for _, w in chosen],
        kept="ensemble" if len(chosen) > 1 else "single",
        score=ensemble_score if len(chosen) > 1 else singles[best],
        best_single=numbers[best], best_single_score=singles[best],
        ensemble_score=ensemble_score, library=len(numbers), rounds=ROUNDS, rows=len(rows),
        dropped=dropped, blended=full, y=np.asarray(y)[covered])


def refit_seconds(result: SearchResult, *, folds: int, fraction: float) -> dict[int, float]:
    """Return each library trial's estimated refit seconds on all rows, from its own time.

    A trial fitted on ``folds`` folds (or the folds it did, when the deadline cut it short)
    of ``fraction`` of the rows each, and predicted, which the estimate keeps as a margin:
    one fit on all rows costs its seconds / folds / fraction.

    >>> from loopml.train.search import SearchResult
    >>> r = SearchResult(None, {}, None, [{"number": 3, "seconds": 8.0, "folds": 5},
    ...                                   {"number": 4, "seconds": 2.0, "folds": 1}],
    ...                  library={3: None, 4: None})
    >>> refit_seconds(r, folds=5, fraction=0.8)
    {3: 2.0, 4: 2.5}
    """
    trials = {t["number"]: t for t in result.trials}
    return {n: one_fit(trials.get(n, {}), folds=folds, fraction=fraction)
            for n in result.library}


def one_fit(trial: dict[str, Any], *, folds: int, fraction: float) -> float:
    """Return the estimated seconds of one fit of ``trial`` on all rows (see refit_seconds)."""
    done = trial.get("folds") or folds
    return (trial.get("seconds") or 0.0) / max(done, 1) / max(fraction, 1e-9)


def _best_number(result: SearchResult) -> int | None:
    best = [t for t in result.trials if t["model"] == result.best_candidate
            and t["value"] == result.best_score and t["state"] == "COMPLETE"]
    return best[0]["number"] if best else None


def _sample_rows(rows: np.ndarray, y: np.ndarray, *, task: str, seed: int) -> np.ndarray:
    """Return at most MAX_ROWS of ``rows``, stratified by class (every class kept)."""
    import numpy as np

    if len(rows) <= MAX_ROWS:
        return rows
    rng = np.random.default_rng(seed)
    if task == "regression":
        return np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    labels = y[rows]
    kept = []
    for label in np.unique(labels):
        members = rows[labels == label]
        # each class its share, and never fewer than 50 rows (or all it has)
        take = min(len(members), max(50, round(MAX_ROWS * len(members) / len(rows))))
        kept.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(kept))


def final_model(plan: TrainPlan, job: SearchJob, result: SearchResult,
                selection: Selection | None) -> TrainedModel:
    """Return the final model: the selected trials refitted on every search row.

    Without a selection (no library: the search was stopped), the best trial is refitted
    and a binary threshold chosen on the validation split, as before there was a library.
    """
    from loopml.evaluate.curves import choose_threshold
    from loopml.train.model import TrainedModel
    from loopml.train.search import fit_pipeline, trial_params

    if selection is None:
        return _best_alone(plan, job, result)
    cores = os.cpu_count() or 1
    trials = {t["number"]: t for t in result.trials}
    common = {"task": plan.task, "target": plan.target, "input_columns": plan.features.columns,
              "classes": plan.classes}
    threshold = 0.5
    if plan.task == "binary":
        threshold, _ = choose_threshold(selection.y, selection.blended[:, 1], plan.metric)
    members = [fit_pipeline(job, trials[n]["model"], trial_params(trials[n]), plan.X, plan.y,
                            n_jobs=cores) for n in selection.numbers]
    if len(members) == 1:
        trial = trials[selection.numbers[0]]
        return TrainedModel(pipeline=members[0], threshold=threshold, candidate=trial["model"],
                            params=trial_params(trial), **common)
    from loopml.train.ensemble import EnsembleModel

    names = [f"{trials[n]['model']} (trial {n})" for n in selection.numbers]
    ensemble = EnsembleModel(members, selection.weights, task=plan.task,
                             classes=list(range(len(plan.classes))), names=names,
                             threshold=threshold)
    return TrainedModel(pipeline=ensemble, threshold=threshold, candidate="ensemble",
                        params={}, **common)


def _best_alone(plan: TrainPlan, job: SearchJob, result: SearchResult) -> TrainedModel:
    from loopml.evaluate.curves import choose_threshold
    from loopml.train.model import TrainedModel
    from loopml.train.search import fit_pipeline

    candidate, params = result.best_candidate, result.best_params
    threshold = 0.5
    if plan.task == "binary" and len(plan.parts["validation"]):
        train, valid = plan.parts["train"], plan.parts["validation"]
        pipeline = fit_pipeline(job, candidate, params, train[plan.features.columns],
                                plan.encode(train[plan.target]))
        proba = pipeline.predict_proba(valid[plan.features.columns])[:, 1]
        threshold, _ = choose_threshold(plan.encode(valid[plan.target]), proba, plan.metric)
    pipeline = fit_pipeline(job, candidate, params, plan.X, plan.y, n_jobs=os.cpu_count() or 1)
    return TrainedModel(pipeline=pipeline, task=plan.task, target=plan.target,
                        input_columns=plan.features.columns, classes=plan.classes,
                        threshold=threshold, candidate=candidate, params=params)


def card_section(selection: Selection | None, result: SearchResult) -> dict[str, Any]:
    """Return the card's ``model.ensemble`` and ``model.selection`` entries (empty: none)."""
    if selection is None:
        return {}
    from loopml.train.search import trial_params

    trials = {t["number"]: t for t in result.trials}
    members = [{"trial": n, "candidate": trials[n]["model"], "params": trial_params(trials[n]),
                "weight": w, "cv_score": trials[n]["value"]}
               for n, w in zip(selection.numbers, selection.weights, strict=True)]
    out: dict[str, Any] = {"selection": {
        "method": METHOD, "rounds": selection.rounds, "library": selection.library,
        "rows": selection.rows, "kept": selection.kept,
        "ensemble_cv_score": selection.ensemble_score,
        "best_single_cv_score": selection.best_single_score,
        "best_single_trial": selection.best_single,
        "dropped_for_budget": selection.dropped}}
    if selection.kept == "ensemble":
        out["ensemble"] = members
    return out


def rows_seen(plan: TrainPlan, selection: Selection | None) -> str:
    """Return, for the card, which rows the final model saw and which its test metrics use."""
    search = len(plan.y)
    test = len(plan.parts["test"])
    chosen = "the out-of-fold predictions" if selection is not None else \
        "the validation split's predictions"
    return (f"fitted on all {search} train + validation rows ({plan.validation} ranked the "
            f"trials; {chosen} chose the members, weights and threshold); test metrics are "
            f"on the {test} test rows, which no trial, selection or fit saw")


def describe(card: dict[str, Any]) -> str:
    """Return the final model in a few words (rich markup, user text escaped).

    >>> describe({"model": {"candidate": "ensemble", "ensemble": [
    ...     {"candidate": "linear", "weight": 0.6}, {"candidate": "lightgbm", "weight": 0.4}]}})
    'ensemble of linear ×0.60 + lightgbm ×0.40'
    """
    from rich.markup import escape

    members = card["model"].get("ensemble")
    if not members:
        return escape(card["model"]["candidate"])
    return "ensemble of " + " + ".join(f"{escape(m['candidate'])} ×{m['weight']:.2f}"
                                       for m in members)
