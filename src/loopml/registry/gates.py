"""Promotion gates: run every gate of ``gates:`` in loopml.yaml and say which pass and why.

Each gate is a small function over the same comparison rows; :func:`run_gates` runs them
all and returns a :class:`GateReport`. Models are any objects with ``predict`` (and
``predict_proba`` for classes); nothing here imports ``loopml.train``.

The gates, in the order they are reported:

- ``metric`` (``gates.metrics``): the challenger's metric on the rows meets its threshold.
- ``beats_champion``: the challenger against the champion on the same rows, decided by a
  paired bootstrap (:func:`loopml.registry.compare.paired_bootstrap`); the rule is in
  :func:`_beats_champion`. Passes with "no champion yet" when there is none.
- ``fairness``: the gap between groups of each sensitive column (from
  ``evaluate/fairness.py``) is at most ``max``; binary tasks only.
- ``latency_p99_ms``: p99 of single-row ``predict`` on this machine, after a warm-up.
- ``max_size_mb``: the stored model's size in MB (10^6 bytes).
- ``data_contract``: every input column is in the dataset's contract with a compatible
  type, and the rows pass the contract (``data/validate.py``: types, missing values,
  ranges, categories, uniqueness; columns the contract names must be present).

A gate that cannot be computed (a metric undefined on one-class rows, a model that fails to
predict, no contract) fails, and its detail says why. A mistake in the spec itself (a
metric that does not fit the task) is refused before any gate runs, by :func:`check_gates`.
"""

from __future__ import annotations

import operator
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import GateFailed, InvalidInput, LoopmlError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import pandas as pd

    from loopml.config import BeatsChampionGate, FairnessGate, GatesSection, MetricGate
    from loopml.data.contract import Contract

LATENCY_CALLS = 200
LATENCY_WARMUP = 20
MB = 1_000_000
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
# Frame types a contract type accepts; the values themselves are checked by validation.
_COMPATIBLE = {
    "integer": {"integer", "number"},  # whole-valued floats pass; validation flags fractions
    "number": {"integer", "number"},
    "string": {"string"},
    "boolean": {"boolean"},
    "datetime": {"datetime", "string"},  # text dates: validation checks that they parse
}


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome.

    ``decided_by`` names what settled it: ``threshold`` (observed against a fixed limit),
    ``min_delta`` or ``bootstrap`` (beats_champion: the size of the improvement, or whether
    it is more than noise), ``measured`` (latency), ``validation`` (data contract),
    ``no champion``, or ``error`` (the gate could not be computed; ``detail`` says why).
    """

    name: str
    passed: bool
    observed: float | str | None
    limit: float | str | None
    detail: str
    decided_by: str


@dataclass(frozen=True)
class GateReport:
    """Every gate's result, the rows they ran on, and the champion comparison (or None)."""

    passed: bool
    gates: list[GateResult]
    rows: dict[str, Any]
    comparison: dict[str, Any] | None = None
    task: str = ""

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data: NaN and infinities become None."""
        from loopml.evaluate.card import json_safe

        return json_safe({"passed": self.passed, "task": self.task, "rows": self.rows,
                          "gates": [asdict(g) for g in self.gates],
                          "comparison": self.comparison})

    def raise_for_failure(self) -> None:
        """Raise :class:`GateFailed` naming every failed gate; do nothing when all passed."""
        if self.passed:
            return
        reasons = "; ".join(f"{g.name}: {g.detail}" for g in self.failed)
        raise GateFailed(f"{len(self.failed)} of {len(self.gates)} gate(s) failed — "
                         f"{reasons}. Fix the model or the gates in loopml.yaml, or override "
                         "with --force --reason 'why'")


def check_gates(spec: GatesSection, *, task: str, sensitive: Sequence[str] = (),
                metric: str | None = None) -> None:
    """Refuse gates that cannot fit this task: checked before any gate runs.

    >>> from loopml.config import GatesSection
    >>> check_gates(GatesSection(metrics=["rmse <= 3"]), task="binary")
    Traceback (most recent call last):
    loopml.errors.InvalidInput: gates.metrics: metric 'rmse' does not fit a binary task; ...
    """
    from loopml.evaluate.metrics import METRICS, metric_names

    def fits(name: str, key: str) -> None:
        if task not in METRICS[name].tasks:
            raise InvalidInput(f"gates.{key}: metric {name!r} does not fit a {task} task; "
                               f"choose from {', '.join(metric_names(task))}")

    for gate in spec.metrics:
        fits(gate.metric, "metrics")
    if spec.beats_champion is not None and spec.beats_champion.metric is not None:
        fits(spec.beats_champion.metric, "beats_champion.metric")
    if metric is not None:
        fits(metric, "beats_champion.metric (from train.metric)")
    if spec.fairness and task != "binary":
        raise InvalidInput(f"gates.fairness: fairness gates need a binary task (rates of the "
                           f"positive class by group), this one is {task}; remove them")
    for gate in spec.fairness:
        if not (gate.sensitive or sensitive):
            raise InvalidInput(f"gates.fairness: {gate.metric} names no column; set "
                               "sensitive: [COLUMN] under it, or data.sensitive")


def run_gates(spec: GatesSection, *, challenger: Any, champion: Any | None, rows: pd.DataFrame,
              rows_note: str, task: str, target: str, classes: Sequence[Any] = (),
              sensitive: Sequence[str] = (), size_bytes: int | None = None,
              contract: Contract | None = None, input_columns: Sequence[str],
              seed: int = 0, metric: str | None = None,
              latency_calls: int = LATENCY_CALLS) -> GateReport:
    """Return the report of every gate in ``spec`` for ``challenger`` on ``rows``.

    ``rows`` hold the input columns and ``target`` (see
    :func:`loopml.registry.compare.comparison_rows`); ``rows_note`` says which rows they are.
    ``classes`` are the target's labels in the challenger's ``predict_proba`` order (a
    model's own ``classes_``, when it has one, is aligned to them). ``metric`` is the
    project's metric (``train.metric``), the default of ``beats_champion.metric``.
    """
    from loopml.evaluate.metrics import DEFAULT_METRIC

    check_gates(spec, task=task, sensitive=sensitive, metric=metric)
    context = _Context(rows=rows, task=task, target=target, classes=list(classes),
                       input_columns=list(input_columns))
    ours = context.predictions(challenger, "challenger")
    gates: list[GateResult] = [_metric_gate(gate, context, ours) for gate in spec.metrics]
    comparison = None
    if spec.beats_champion is not None:
        chosen = spec.beats_champion.metric or metric or DEFAULT_METRIC[task]
        result, comparison = _beats_champion(spec.beats_champion, chosen, context, ours,
                                             champion, seed=seed)
        gates.append(result)
    for gate in spec.fairness:
        gates.extend(_fairness_gate(gate, column, context, ours)
                     for column in (gate.sensitive or list(sensitive)))
    if spec.latency_p99_ms is not None:
        gates.append(_latency_gate(spec.latency_p99_ms, context, challenger,
                                   calls=latency_calls))
    if spec.max_size_mb is not None:
        gates.append(_size_gate(spec.max_size_mb, size_bytes))
    if spec.data_contract:
        gates.append(_contract_gate(contract, context))
    return GateReport(passed=all(g.passed for g in gates), gates=gates,
                      rows={"count": len(rows), "note": rows_note}, comparison=comparison,
                      task=task)


# -- predictions, once per model ----------------------------------------------------------------

@dataclass
class _Scored:
    """A model's predictions on the rows (encoded as evaluate/metrics.py reads them)."""

    pred: np.ndarray | None = None
    proba: np.ndarray | None = None
    error: str | None = None


@dataclass
class _Context:
    rows: pd.DataFrame
    task: str
    target: str
    classes: list[Any]
    input_columns: list[str]
    _y: Any = None
    _y_error: str | None = None

    @property
    def labels(self) -> list[int] | None:
        return None if self.task == "regression" else list(range(len(self.classes)))

    def y(self) -> np.ndarray | None:
        """Return the encoded target of the rows, or None (reason in ``y_error``)."""
        import numpy as np

        from loopml.evaluate.report import encode_labels

        if self._y is None and self._y_error is None:
            if self.target not in self.rows.columns:
                self._y_error = f"the rows lack the target column {self.target!r}"
            elif self.task == "regression":
                self._y = np.asarray(self.rows[self.target], dtype=float)
            else:
                try:
                    self._y = encode_labels(self.rows[self.target].tolist(), self.classes)
                except InvalidInput as exc:
                    self._y_error = str(exc)
        return self._y

    @property
    def y_error(self) -> str | None:
        self.y()
        return self._y_error

    def predictions(self, model: Any, who: str) -> _Scored:
        """Return ``model``'s predictions on the rows; a failure is kept as the reason."""
        import numpy as np

        if len(self.rows) == 0:
            return _Scored(error="there are no rows to score on")
        columns = list(getattr(model, "input_columns", None) or self.input_columns)
        missing = [c for c in columns if c not in self.rows.columns]
        if missing:
            return _Scored(error=f"the rows lack the {who}'s input column(s) "
                                 f"{', '.join(map(repr, missing[:10]))}")
        inputs = self.rows[columns]
        try:
            if self.task == "regression":
                return _Scored(pred=np.asarray(model.predict(inputs), dtype=float))
            proba = np.asarray(model.predict_proba(inputs), dtype=float)
        except LoopmlError as exc:
            return _Scored(error=f"the {who} cannot predict on these rows: {exc}")
        except Exception as exc:  # noqa: BLE001 - any model's error; its text may hold values
            return _Scored(error=f"the {who} failed to predict on these rows "
                                 f"({type(exc).__name__}); call its predict on them to see why")
        own = getattr(model, "classes_", None)
        if own is not None:
            position = {value: index for index, value in enumerate(list(own))}
            if set(position) != set(self.classes) or len(position) != len(self.classes):
                return _Scored(error=f"the {who}'s classes ({', '.join(map(str, own))}) differ "
                                     f"from the challenger's ({', '.join(map(str, self.classes))})")
            proba = proba[:, [position[c] for c in self.classes]]
        if proba.ndim != 2 or proba.shape[1] != len(self.classes):
            return _Scored(error=f"the {who}'s predict_proba gave {proba.shape} for "
                                 f"{len(self.classes)} classes")
        if self.task == "binary":
            pred = (proba[:, 1] >= float(getattr(model, "threshold", 0.5))).astype(int)
        else:
            pred = proba.argmax(axis=1)
        return _Scored(pred=pred, proba=proba)


def _failed(name: str, reason: str, *, limit: float | str | None = None) -> GateResult:
    return GateResult(name, False, None, limit, reason, "error")


def _value(name: str, context: _Context, scored: _Scored) -> tuple[float | None, str | None]:
    """Return metric ``name`` of ``scored`` on the rows, or None and why it is undefined."""
    import warnings

    from loopml.evaluate.metrics import score, undefined_reasons

    y = context.y()
    if y is None or scored.error:
        return None, context.y_error or scored.error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined values are explained below
            value = score(name, y, scored.pred, scored.proba, labels=context.labels)
    except ValueError:
        value = None
    if value is None or value != value:
        return None, f"{name} is undefined on these rows: " + undefined_reasons(
            context.task, {name: None}, y)[name]
    return value, None


# -- the gates ----------------------------------------------------------------------------------

def _metric_gate(gate: MetricGate, context: _Context, ours: _Scored) -> GateResult:
    name = f"metric {gate}"
    value, reason = _value(gate.metric, context, ours)
    if value is None:
        return _failed(name, reason or "", limit=gate.value)
    passed = _OPS[gate.op](value, gate.value)
    return GateResult(name, passed, value, gate.value,
                      f"{gate.metric} {value:.4g} on {len(context.rows)} rows "
                      f"{'meets' if passed else 'fails'} {gate}", "threshold")


def _beats_champion(gate: BeatsChampionGate, metric: str, context: _Context, ours: _Scored,
                    champion: Any | None, *, seed: int
                    ) -> tuple[GateResult, dict[str, Any] | None]:
    """Return the beats_champion result and the comparison it made.

    The rule, with d the observed improvement (challenger − champion, signed so that above 0
    is better) and the paired bootstrap at ``confidence`` c:

    - ``min_delta`` > 0: passes when d ≥ min_delta and the one-sided p-value that the
      challenger is not better is ≤ 1 − c (the improvement is more than noise).
    - ``min_delta`` ≤ 0 ("not worse", the default with 0): refused when d < min_delta — a
      challenger worse than the champion on the same rows never replaces it, however small
      the rows; the bootstrap says in the detail whether that difference is beyond noise.
      A re-trained model exactly as good as the champion (d = 0) passes.
    """
    from loopml.registry.compare import paired_bootstrap

    name = "beats_champion"
    if champion is None:
        return GateResult(name, True, None, gate.min_delta, "no champion yet",
                          "no champion"), None
    theirs = context.predictions(champion, "champion")
    y = context.y()
    reason = context.y_error or ours.error or theirs.error
    if reason or y is None:
        return _failed(name, reason or "", limit=gate.min_delta), None
    try:
        boot = paired_bootstrap(y, theirs.pred, ours.pred, metric=metric, task=context.task,
                                n=gate.resamples, seed=seed, proba_a=theirs.proba,
                                proba_b=ours.proba, labels=context.labels,
                                confidence=gate.confidence)
    except InvalidInput as exc:
        return _failed(name, str(exc), limit=gate.min_delta), None
    comparison = {
        "metric": metric, "challenger": boot["b"], "champion": boot["a"],
        "delta": boot["delta"], "mean_delta": boot["mean_delta"], "ci": boot["ci"],
        "confidence": gate.confidence, "p_value": boot["p_value"],
        "resamples": boot["resamples"], "skipped": boot["skipped"],
        "min_delta": gate.min_delta, "higher_is_better": boot["direction"] > 0,
    }
    delta, alpha = boot["delta"], 1 - gate.confidence
    head = (f"{metric}: challenger {boot['b']:.4g} vs champion {boot['a']:.4g}, improvement "
            f"{delta:+.4g}")
    if boot["p_value"] is None:
        return _failed(name, f"{head}; every resample left {metric} undefined",
                       limit=gate.min_delta), comparison
    level = f"{gate.confidence:.0%}"
    ci = f" ({level} CI {boot['ci'][0]:+.4g} to {boot['ci'][1]:+.4g}, p = {boot['p_value']:.3g})"
    if gate.min_delta > 0:
        if delta < gate.min_delta:
            return GateResult(name, False, delta, gate.min_delta,
                              f"{head}{ci} is below min_delta {gate.min_delta:g}",
                              "min_delta"), comparison
        passed = boot["p_value"] <= alpha
        verdict = (f"at least min_delta {gate.min_delta:g} and more than noise at {level}"
                   if passed else f"at least min_delta {gate.min_delta:g} but within noise "
                   f"(p > {alpha:.3g}): the rows cannot tell it from the champion")
        return GateResult(name, passed, delta, gate.min_delta, f"{head}{ci}, {verdict}",
                          "bootstrap"), comparison
    worse = delta < gate.min_delta
    allowed = "no worse" if gate.min_delta == 0 else f"at most {-gate.min_delta:g} worse"
    if worse and boot["upper"] < gate.min_delta:
        verdict = f"worse than the champion, beyond noise at {level} (allowed: {allowed})"
    elif worse:
        verdict = (f"worse than the champion on these rows (allowed: {allowed}); within "
                   f"noise at {level}, so more labelled rows could tell them apart")
    else:
        verdict = ("not worse than the champion" if gate.min_delta == 0 else
                   f"within the allowed {-gate.min_delta:g} below the champion")
    return GateResult(name, not worse, delta, gate.min_delta, f"{head}{ci}: {verdict}",
                      "bootstrap" if delta < gate.min_delta else "min_delta"), comparison


def _fairness_gate(gate: FairnessGate, column: str, context: _Context, ours: _Scored
                   ) -> GateResult:
    from loopml.evaluate.fairness import group_rates

    name = f"fairness {gate.metric} [{column}]"
    y = context.y()
    if column not in context.rows.columns:
        return _failed(name, f"the rows lack the sensitive column {column!r}", limit=gate.max)
    if y is None or ours.error:
        return _failed(name, context.y_error or ours.error or "", limit=gate.max)
    rates = group_rates(y, ours.pred, context.rows[column])
    value = rates[gate.metric]
    groups = len(rates["groups"])
    if value is None:
        return _failed(name, f"{gate.metric} is undefined for {column!r}: it needs two or more "
                             f"groups with the rates it compares ({groups} group(s) here)",
                       limit=gate.max)
    passed = value <= gate.max
    return GateResult(name, passed, value, gate.max,
                      f"{gate.metric} {value:.3f} across {groups} groups of {column!r} "
                      f"({'within' if passed else 'above'} max {gate.max:g})", "threshold")


def _latency_gate(limit_ms: float, context: _Context, model: Any, *, calls: int) -> GateResult:
    """Return the latency gate: p99 of single-row predict calls, after a warm-up."""
    import numpy as np

    name = "latency_p99_ms"
    if len(context.rows) == 0:
        return _failed(name, "there are no rows to time predict on", limit=limit_ms)
    columns = list(getattr(model, "input_columns", None) or context.input_columns)
    missing = [c for c in columns if c not in context.rows.columns]
    if missing:
        return _failed(name, f"the rows lack input column(s) {', '.join(map(repr, missing))}",
                       limit=limit_ms)
    inputs = context.rows[columns]
    singles = [inputs.iloc[[i % len(inputs)]] for i in range(min(calls, len(inputs)))]
    timings = np.empty(calls)
    try:
        for i in range(LATENCY_WARMUP):
            model.predict(singles[i % len(singles)])
        for i in range(calls):
            row = singles[i % len(singles)]
            started = time.perf_counter()
            model.predict(row)
            timings[i] = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - any model's error; its text may hold values
        return _failed(name, f"predict on a single row failed ({type(exc).__name__})",
                       limit=limit_ms)
    p50, p99 = (float(v) * 1000 for v in np.percentile(timings, [50, 99]))
    passed = p99 <= limit_ms
    return GateResult(name, passed, p99, limit_ms,
                      f"p99 {p99:.2f} ms, p50 {p50:.2f} ms over {calls} single-row predict "
                      f"calls on this machine ({'within' if passed else 'over'} "
                      f"{limit_ms:g} ms)", "measured")


def _size_gate(limit_mb: float, size_bytes: int | None) -> GateResult:
    name = "max_size_mb"
    if size_bytes is None:
        return _failed(name, "the model's stored size is unknown", limit=limit_mb)
    size = size_bytes / MB
    passed = size <= limit_mb
    return GateResult(name, passed, size, limit_mb,
                      f"{size:.2f} MB stored ({size_bytes} bytes; "
                      f"{'within' if passed else 'over'} {limit_mb:g} MB)", "threshold")


def _contract_gate(contract: Contract | None, context: _Context) -> GateResult:
    """Return the data-contract gate: input columns typed as the contract says, rows valid."""
    name = "data_contract"
    if contract is None:
        return _failed(name, "there is no data contract to check against; store one with "
                             "`loopml data contract`, or set gates.data_contract: false")
    problems = _column_problems(contract, context.rows, context.input_columns)
    try:
        report = _validate_frame(context.rows, contract)
    except LoopmlError as exc:
        return GateResult(name, False, None, 0, "; ".join(
            [*problems, f"the rows cannot be validated: {exc}"]), "validation")
    errors = [v for v in report.violations if v.severity == "error"]
    problems += [f"{v.column!r}: {v.message} ({v.rows} rows)" for v in errors]
    warnings = [v for v in report.violations if v.severity != "error"]
    note = f"; {len(warnings)} warning(s), e.g. {warnings[0].message}" if warnings else ""
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        return GateResult(name, False, len(problems), 0,
                          f"{len(problems)} contract violation(s): {shown}{note}", "validation")
    return GateResult(name, True, 0, 0,
                      f"{len(context.input_columns)} input columns in the contract of "
                      f"{contract.dataset!r} with compatible types; {len(context.rows)} rows "
                      f"pass it{note}", "validation")


def _column_problems(contract: Contract, rows: pd.DataFrame, input_columns: list[str]
                     ) -> list[str]:
    """Return what is wrong with the input columns: not in the contract, or typed otherwise."""
    import pyarrow as pa

    from loopml.data.contract import logical_type

    problems = []
    for column in input_columns:
        rule = contract.columns.get(column)
        if rule is None:
            problems.append(f"input column {column!r} is not in the contract")
            continue
        if column not in rows.columns or rule.type == "other":
            continue  # a missing column is reported by validation
        try:
            arrow = pa.Array.from_pandas(rows[column]).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            problems.append(f"input column {column!r} mixes values of different types")
            continue
        if pa.types.is_dictionary(arrow):  # pandas categories: their values' type
            arrow = arrow.value_type
        if pa.types.is_null(arrow):
            continue  # all missing: validation checks nullability
        found = logical_type(arrow)
        if found not in _COMPATIBLE[rule.type]:
            problems.append(f"input column {column!r} holds {found} values, the contract "
                            f"says {rule.type}")
    return problems


def _validate_frame(rows: pd.DataFrame, contract: Contract) -> Any:
    """Return the validation report of ``rows``: written to Parquet, checked by data/validate."""
    import os
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.data.sources import Source
    from loopml.data.validate import validate

    with tempfile.TemporaryDirectory(prefix=f"loopml-gates-{os.getpid()}-") as tmp:
        path = Path(tmp, "rows.parquet")
        try:
            table = pa.Table.from_pandas(rows, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput("a column mixes values of different types, so they cannot be "
                               "read as one typed table") from exc
        pq.write_table(table, path)
        try:
            return validate(Source("parquet", str(path)), contract)
        except InvalidInput as exc:  # its message names the temporary file: name the rows
            raise InvalidInput(str(exc).replace(str(path), "the comparison rows")) from exc
