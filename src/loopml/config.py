"""`loopml.yaml`, the project file: validated once at the edge (CLI), then passed down frozen.

Sections: ``project``, ``models``, ``data``, ``features``, ``train``, ``gates`` (see
:class:`GatesSection`), ``monitor`` and ``retrain`` (see :mod:`loopml.monitor.settings`);
``serve`` is reserved for the part that fills it.
Unknown keys are errors that name the key, so a typo never passes silently. Checks that need
the data (does the target exist? does the metric fit the task?) run in ``train.plan`` before
any work starts.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.data.splits import SEED_MAX
from loopml.errors import InvalidInput
from loopml.monitor.settings import MonitorSection, RetrainSection

DEFAULT_FILE = "loopml.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSection(_Section):
    name: str = "default"
    description: str | None = None


Task = Literal["auto", "binary", "multiclass", "regression"]


class SplitSection(_Section):
    method: Literal["auto", "random", "stratified", "group", "time"] = "auto"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 42
    column: str | None = None

    @field_validator("seed")
    @classmethod
    def _seed_range(cls, value: int) -> int:
        return _check_seed(value)


class DataSection(_Section):
    dataset: str | None = None
    source: str | None = None
    target: str | None = None
    task: Task = "auto"
    sensitive: list[str] = Field(default_factory=list)
    split: SplitSection = Field(default_factory=SplitSection)
    pii: dict[str, Literal["drop", "hash", "keep"]] = Field(default_factory=dict)
    null_values: list[str] = Field(default_factory=lambda: [""])
    encoding: str = "utf8"  # text encoding of a CSV source, as `loopml data add --encoding`
    format: Literal["csv", "parquet", "jsonl"] | None = None  # default: from the suffix


class FeaturesSection(_Section):
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    datetime: list[str] | None = None
    drop: list[str] = Field(default_factory=list)
    categorical_encoding: Literal["auto", "onehot", "ordinal", "target"] = "auto"
    use_sensitive: bool = False


# Limits of the numbers a project file may hold: seeds fit every library's 32-bit seed.
MAX_SEED = SEED_MAX  # one range for every seed: data split, train
MAX_TRIALS = 100_000
MAX_BUDGET_S = 31_536_000  # a year
MAX_JOBS = 1024


def _check_seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"must be a whole number from 0 to {MAX_SEED}, got {value}")
    return value


class ParamRange(_Section):
    """A search range: ``low``/``high`` (``log`` scale optional), or a list of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ParamRange:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either low and high, or choices")
        for key in ("low", "high"):
            bound = getattr(self, key)
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"{key} must be a finite number, got {bound}")
            if bound is not None and self.int and bound != round(bound):
                raise ValueError(f"{key} must be a whole number with int: true, got {bound}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low is not None and self.low <= 0:
            raise ValueError(f"low must be above 0 with log: true (a log scale has no 0 or "
                             f"negatives), got {self.low}")
        if self.choices is not None and not self.choices:
            raise ValueError("choices is empty; list at least one value")
        return self


class TrainSection(_Section):
    candidates: list[str] = Field(default_factory=lambda: [
        "linear", "random_forest", "extra_trees", "hist_gradient_boosting", "lightgbm",
        "xgboost"])
    search_space: dict[str, dict[str, ParamRange]] = Field(default_factory=dict)
    trials: int | None = 40
    time_budget_s: float | None = None
    metric: str | None = None
    backend: Literal["local", "ray"] = "local"
    n_jobs: int = Field(default=-1, description="parallel trials; -1 = all cores")
    cv_folds: int | Literal["auto"] = "auto"
    # the final model: greedy ensemble selection over the trials (kept only when it beats the
    # best single trial out of fold), or false for the best single trial
    ensemble: bool = True
    seed: int = 42

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[str]) -> list[str]:
        from loopml.train.trainers import trainer_names

        unknown = [c for c in value if c not in trainer_names()]
        if unknown:
            raise ValueError(f"unknown candidate(s) {unknown}; choose from "
                             f"{list(trainer_names())}")
        if not value:
            raise ValueError("name at least one candidate")
        return value

    @field_validator("trials")
    @classmethod
    def _trials_range(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_TRIALS:
            raise ValueError(f"must be a whole number from 1 to {MAX_TRIALS}, got {value}")
        return value

    @field_validator("time_budget_s")
    @classmethod
    def _budget_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= MAX_BUDGET_S:
            raise ValueError(f"must be a number of seconds above 0 and at most "
                             f"{MAX_BUDGET_S} (a year), got {value}")
        return value

    @field_validator("n_jobs")
    @classmethod
    def _jobs_range(cls, value: int) -> int:
        if value != -1 and not 1 <= value <= MAX_JOBS:
            raise ValueError(f"must be -1 (one per core) or a whole number from 1 to "
                             f"{MAX_JOBS}, got {value}")
        return value

    @field_validator("cv_folds")
    @classmethod
    def _folds_range(cls, value: int | str) -> int | str:
        if value != "auto" and value < 2:  # the upper limit, the row count, is checked in make_plan
            raise ValueError(f"must be auto or a whole number of folds from 2 up, got {value}")
        return value

    @field_validator("seed")
    @classmethod
    def _seed_range(cls, value: int) -> int:
        return _check_seed(value)

    @model_validator(mode="after")
    def _budget(self) -> TrainSection:
        if self.trials is None and self.time_budget_s is None:
            raise ValueError("set trials, time_budget_s, or both")
        from loopml.evaluate.metrics import METRICS

        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {list(METRICS)}")
        for name in self.search_space:
            if name not in self.candidates:
                raise ValueError(f"search_space names {name!r}, which is not a candidate")
        return self


class ModelsSection(_Section):
    # The registered model's name; None: the project's name.
    name: str | None = Field(default=None, min_length=1, max_length=200)


# -- gates: what a model must pass to be promoted (see loopml.registry.gates) -------------------

GATE_OPERATORS = (">=", "<=", ">", "<")
# The group gaps evaluate/fairness.py computes (keys of group_rates' result); lower is fairer.
FAIRNESS_METRICS = ("equalized_odds_difference", "demographic_parity_difference",
                    "tpr_difference", "fpr_difference")
MAX_RESAMPLES = 100_000
_THRESHOLD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|=>|=<|==|=|>|<)?\s*(\S+)?\s*$")


def _known_metric(name: str) -> str:
    from loopml.evaluate.metrics import METRICS

    if name in FAIRNESS_METRICS:
        raise ValueError(f"{name!r} is a fairness metric; put it under gates.fairness "
                         f"(e.g. fairness: {{metric: {name}, max: 0.1, sensitive: [COLUMN]}})")
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return name


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


def _parse_threshold(text: str, *, ops: tuple[str, ...] = GATE_OPERATORS) -> dict[str, Any]:
    """Return ``{"metric", "op", "value"}`` of a threshold written as text.

    >>> _parse_threshold("roc_auc >= 0.80")
    {'metric': 'roc_auc', 'op': '>=', 'value': 0.8}
    """
    example = "'roc_auc >= 0.80'" if ">=" in ops else "'equalized_odds_difference <= 0.10'"
    shape = f"expected 'METRIC OP NUMBER' with OP one of {', '.join(ops)} (e.g. {example})"
    match = _THRESHOLD.match(text)
    if not match or match.group(2) is None or match.group(3) is None:
        raise ValueError(f"{shape}, got {text!r}")
    name, op, number = match.groups()
    if op not in ops:
        raise ValueError(f"unknown operator {op!r} in {text!r}; {shape}")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{number!r} in {text!r} is not a number; {shape}") from None
    return {"metric": name, "op": op, "value": value}


class MetricGate(_Section):
    """The challenger's ``metric`` on the comparison rows must satisfy ``op value``."""

    metric: str
    op: Literal[">=", "<=", ">", "<"]
    value: float

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return _parse_threshold(data)
        if isinstance(data, dict) and "op" not in data and "metric" in data:
            # {metric: rmse, value: 12}: "at least this good", in the metric's own direction.
            from loopml.evaluate.metrics import METRICS

            known = METRICS.get(data["metric"]) if isinstance(data["metric"], str) else None
            # An unknown name gets a stand-in operator: its one error is then the name's.
            return {**data, "op": "<=" if known is not None and known.direction < 0 else ">="}
        return data

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        return _known_metric(value)

    @field_validator("value")
    @classmethod
    def _value(cls, value: float) -> float:
        return _finite(value, "value")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class BeatsChampionGate(_Section):
    """The challenger must beat the champion on the same rows (a paired bootstrap decides).

    ``min_delta`` above 0: passes when the challenger is better by at least ``min_delta`` and
    the bootstrap says it is better beyond noise at ``confidence``. ``min_delta`` 0 or below:
    "not worse" — refused when the challenger is worse than the champion by more than
    ``-min_delta`` on the same rows (the bootstrap says whether that is beyond noise).
    """

    metric: str | None = None  # None: train.metric, else the task's default metric
    min_delta: float = 0.0
    confidence: float = 0.95
    resamples: int = 1000

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str | None) -> str | None:
        return None if value is None else _known_metric(value)

    @field_validator("min_delta")
    @classmethod
    def _delta(cls, value: float) -> float:
        return _finite(value, "min_delta")

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, value: float) -> float:
        if not 0.5 <= value < 1:
            raise ValueError(f"must be a probability from 0.5 up to (not including) 1, such "
                             f"as 0.95, got {value}")
        return value

    @field_validator("resamples")
    @classmethod
    def _resamples(cls, value: int) -> int:
        if not 100 <= value <= MAX_RESAMPLES:
            raise ValueError(f"must be a whole number from 100 to {MAX_RESAMPLES}, got {value}")
        return value


class FairnessGate(_Section):
    """The gap ``metric`` between groups of each ``sensitive`` column must be at most ``max``."""

    metric: str = "equalized_odds_difference"
    max: float
    sensitive: list[str] | None = None  # None: data.sensitive

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            parsed = _parse_threshold(data, ops=("<=",))
            return {"metric": parsed["metric"], "max": parsed["value"]}
        return data

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if value not in FAIRNESS_METRICS:
            raise ValueError(f"unknown fairness metric {value!r}; choose from "
                             f"{', '.join(FAIRNESS_METRICS)}")
        return value

    @field_validator("max")
    @classmethod
    def _max(cls, value: float) -> float:
        if not 0 <= _finite(value, "max") <= 1:
            raise ValueError(f"must be a gap between rates, from 0 to 1, got {value}")
        return value

    @field_validator("sensitive", mode="before")
    @classmethod
    def _one_column(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sensitive")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("name at least one column, or leave sensitive out to use "
                             "data.sensitive")
        return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # YAML `true` would read as 1
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


def _positive(value: float | None, unit: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a number of {unit} above 0, got {value}")
    return value


class GatesSection(_Section):
    """What a model must pass to become champion; ``loopml models promote`` runs every gate.

    Written in loopml.yaml as::

        gates:
          metrics: ["roc_auc >= 0.80", "brier <= 0.2"]   # or a mapping: {roc_auc: ">= 0.80"}
          beats_champion: {metric: roc_auc, min_delta: 0.002, confidence: 0.95}
          fairness: {metric: equalized_odds_difference, max: 0.10, sensitive: [sex]}  # or a list
          latency_p99_ms: 25     # p99 of single-row predict, measured on this machine
          max_size_mb: 50        # the stored model, in MB (10^6 bytes)
          data_contract: true    # the comparison rows pass the dataset's contract

    With no ``gates:`` (or an empty one) two gates still run: ``beats_champion`` with
    ``min_delta: 0`` (the challenger is not worse than the champion beyond noise, on the
    task's metric) and ``data_contract``. ``beats_champion: false`` and
    ``data_contract: false`` turn them off; the other gates run only when set.
    """

    metrics: list[MetricGate] = Field(default_factory=list)
    beats_champion: BeatsChampionGate | None = Field(default_factory=BeatsChampionGate)
    fairness: list[FairnessGate] = Field(default_factory=list)
    latency_p99_ms: float | None = None
    max_size_mb: float | None = None
    data_contract: bool = True

    @model_validator(mode="before")
    @classmethod
    def _empty(cls, data: Any) -> Any:
        return {} if data is None else data  # `gates:` with nothing under it

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):  # {roc_auc: ">= 0.80", rmse: 12}
            return [f"{name} {limit}" if isinstance(limit, str) else
                    {"metric": name, "value": limit} for name, limit in value.items()]
        return value

    @field_validator("beats_champion", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("fairness", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, dict | str) else value

    @field_validator("latency_p99_ms", "max_size_mb", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return _not_bool(value)

    @field_validator("latency_p99_ms")
    @classmethod
    def _latency(cls, value: float | None) -> float | None:
        return _positive(value, "milliseconds")

    @field_validator("max_size_mb")
    @classmethod
    def _size(cls, value: float | None) -> float | None:
        return _positive(value, "megabytes")


class ProjectConfig(_Section):
    project: ProjectSection = Field(default_factory=ProjectSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    data: DataSection = Field(default_factory=DataSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    train: TrainSection = Field(default_factory=TrainSection)
    gates: GatesSection = Field(default_factory=GatesSection)
    monitor: MonitorSection = Field(default_factory=MonitorSection)
    retrain: RetrainSection = Field(default_factory=RetrainSection)
    # Reserved for the part that fills it; accepted so a project file can grow ahead.
    serve: dict[str, Any] | None = None

    @field_validator("monitor", "retrain", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value  # `monitor:` with nothing under it


def load_config(path: str | Path | None = None) -> ProjectConfig | None:
    """Return the project file at ``path`` (default ./loopml.yaml), or None if there is none.

    A relative ``data.source`` is resolved against the project file's folder.
    """
    from loopml.yamlfile import parse_yaml

    explicit = path is not None
    file = Path(path or DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise InvalidInput(f"{file}: no such project file")
        return None
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file}: not UTF-8 text") from exc
    config = parse_yaml(text, ProjectConfig, origin=str(file),
                        shape="a mapping with sections such as project: and data:")
    source = config.data.source
    if source and "://" not in source and not Path(source).is_absolute():
        # A relative data.source is relative to the project file, wherever it is run from.
        config = config.model_copy(update={"data": config.data.model_copy(
            update={"source": str((file.parent / source).resolve())})})
    return config
