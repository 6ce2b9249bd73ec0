"""``train.time_budget_s`` as the whole command's: the phases' clock and what the search may use.

:class:`Phases` records the wall seconds of each phase of one ``loopml train`` (prepare,
search, select, refit, evaluation, card); :class:`Budget` decides when the search must stop
so that what follows it still fits, from the trials' own measured times.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.train.search import SearchResult


class Phases:
    """Wall seconds of each phase of one command, in order (prepare, search, refit, …)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._last = started
        self.seconds: dict[str, float] = {}

    def end(self, phase: str) -> float:
        """Record that ``phase`` ends now; return its seconds."""
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now
        return self.seconds[phase]

    def total(self) -> float:
        return time.perf_counter() - self.started


class Budget:
    """``train.time_budget_s`` as the whole command's: what the search may use of it.

    Selection, refit, evaluation and the card come after the search; their cost is reserved
    from the trials' own measured times (a trial's seconds over its folds, scaled from a
    fold's rows to all of them, is one refit): the best trial's refit, as much again for
    evaluation and explanations, the refit of the best trial of up to three other candidates
    (the likely ensemble members), the selection's share and a few seconds. The search is
    asked to stop once the command has used its budget less that reserve, or earlier when it
    has converged: no better score by a thousandth in the last half of at least 30 trials.
    """

    FIXED_S = 3.0  # card, registry and process set-up that do not scale with the data
    MAX_SHARE = 0.5  # never reserve more than half the budget
    MEMBERS = 3  # other candidates' refits reserved for an ensemble
    CONVERGED_TRIALS = 30
    CONVERGED_TOLERANCE = 1e-3  # relative to the best score

    def __init__(self, seconds: float | None, started: float, *, folds: int,
                 fraction: float = 0.8, direction: int = 1, ensemble: bool = True) -> None:
        self.seconds = seconds
        self.started = started
        self.folds = folds
        self.fraction = fraction  # of the search rows each fold's fit sees
        self.direction = direction
        self.ensemble = ensemble  # with false, no other members' refits are reserved
        self.reserved = 0.0
        self.stopped = False
        self.converged = False
        self.stop_asked_at: float | None = None  # seconds into the command

    def search_seconds(self) -> float | None:
        """Return the search's hard deadline: what the budget leaves after preparing."""
        if self.seconds is None:
            return None
        return max(1.0, self.seconds - self.used() - self.FIXED_S)

    def used(self) -> float:
        return time.perf_counter() - self.started

    def one_fit(self, trial: dict[str, Any]) -> float:
        """Return the estimated seconds of ``trial``'s refit on all search rows."""
        from loopml.train.select import one_fit

        return one_fit(trial, folds=self.folds, fraction=self.fraction)

    def reserve(self, summary: SearchResult) -> float:
        """Return the seconds to keep for what follows the search (see the class)."""
        import statistics

        from loopml.train.select import SELECT_SHARE

        best: dict[str, dict[str, Any]] = {}
        for t in summary.trials:
            if t["state"] == "COMPLETE" and t["value"] is not None and t["seconds"]:
                held = best.get(t["model"])
                if held is None or self.direction * t["value"] > self.direction * held["value"]:
                    best[t["model"]] = t
        if summary.best_candidate not in best:
            return self.FIXED_S
        first = best.pop(summary.best_candidate)
        others = sorted(best.values(), key=lambda t: -self.direction * t["value"])
        members = others[:self.MEMBERS] if self.ensemble else []
        estimate = 2.0 * self.one_fit(first) + sum(self.one_fit(t) for t in members)
        # a trial running when the stop is asked ends at its next fold: half a trial, on average
        running = statistics.median(t["seconds"] for t in summary.trials
                                    if t["state"] == "COMPLETE" and t["seconds"])
        estimate += 0.5 * running + SELECT_SHARE * (self.seconds or 0.0) + self.FIXED_S
        cap = self.MAX_SHARE * (self.seconds or 0.0)
        return min(cap, estimate) if cap else estimate

    def has_converged(self, summary: SearchResult) -> bool:
        """Return whether the last half of the complete trials (≥ 30) improved nothing."""
        values = [self.direction * t["value"] for t in sorted(
            summary.trials, key=lambda t: t["number"])
            if t["state"] == "COMPLETE" and t["value"] is not None]
        if len(values) < self.CONVERGED_TRIALS:
            return False
        best, last_gain = values[0], 0
        for index, value in enumerate(values[1:], start=1):
            if value > best + self.CONVERGED_TOLERANCE * max(abs(best), 1e-9):
                last_gain = index
            best = max(best, value)
        return len(values) - 1 - last_gain >= len(values) // 2

    def should_stop(self, summary: SearchResult) -> bool:
        """Return whether the search must end now (asked at each progress poll)."""
        if self.stopped or self.converged:
            return True  # the reserve recorded is the one the stop was decided with
        if self.seconds is None or summary.best_candidate is None:
            return False
        self.reserved = self.reserve(summary)
        if self.used() >= self.seconds - self.reserved:
            self.stopped = True
        elif self.has_converged(summary):
            self.converged = True
        if self.stopped or self.converged:
            self.stop_asked_at = self.used()
        return self.stopped or self.converged

    def time_left(self, after: float = 0.0) -> float | None:
        """Return the seconds the budget still has, less ``after`` and the fixed part."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - self.used() - after - self.FIXED_S)

    def record(self) -> dict[str, Any]:
        """Return what the card says of the budget."""
        return {"budget": self.seconds, "reserved": self.reserved,
                "stopped_for_reserve": self.stopped, "converged": self.converged,
                "stop_asked_at": self.stop_asked_at}
