"""`loopml.yaml`, the project file: validated once at the edge (CLI), then passed down frozen.

Sections: ``project``, ``data``, ``features``, ``train``; ``gates``, ``serve`` and ``monitor``
are reserved for the parts that fill them. Unknown keys are errors that name the key, so a
typo never passes silently. Checks that need the data (does the target exist? does the
metric fit the task?) run in ``train.plan`` before any work starts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.data.splits import SEED_MAX
from loopml.errors import InvalidInput

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
        "linear", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"])
    search_space: dict[str, dict[str, ParamRange]] = Field(default_factory=dict)
    trials: int | None = 40
    time_budget_s: float | None = None
    metric: str | None = None
    backend: Literal["local", "ray"] = "local"
    n_jobs: int = Field(default=-1, description="parallel trials; -1 = all cores")
    cv_folds: int | Literal["auto"] = "auto"
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


class ProjectConfig(_Section):
    project: ProjectSection = Field(default_factory=ProjectSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    data: DataSection = Field(default_factory=DataSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    train: TrainSection = Field(default_factory=TrainSection)
    # Reserved for the parts that fill them; accepted so a project file can grow ahead.
    gates: dict[str, Any] | None = None
    serve: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None


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
