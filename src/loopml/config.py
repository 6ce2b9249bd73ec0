"""`loopml.yaml`, the project file: validated once at the edge (CLI), then passed down frozen.

Sections: ``project``, ``data``, ``features``, ``train``; ``gates``, ``serve`` and ``monitor``
are reserved for the parts that fill them. Unknown keys are errors that name the key, so a
typo never passes silently. Checks that need the data (does the target exist? does the
metric fit the task?) run in ``train.plan`` before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopml.errors import InvalidInput

DEFAULT_FILE = "loopml.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSection(_Section):
    name: str = "default"
    description: str | None = None


Task = Literal["auto", "binary", "multiclass", "regression"]
TASKS = ("binary", "multiclass", "regression")
CANDIDATES = ("logistic", "linear", "random_forest", "hist_gradient_boosting", "lightgbm",
              "xgboost", "mlp")
METRICS = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "f1", "accuracy", "brier"),
    "multiclass": ("accuracy", "f1_macro", "log_loss", "roc_auc_ovr"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


class SplitSection(_Section):
    method: Literal["auto", "random", "stratified", "group", "time"] = "auto"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 42
    column: str | None = None


class DataSection(_Section):
    dataset: str | None = None
    source: str | None = None
    target: str | None = None
    task: Task = "auto"
    sensitive: list[str] = Field(default_factory=list)
    split: SplitSection = Field(default_factory=SplitSection)
    pii: dict[str, Literal["drop", "hash", "keep"]] = Field(default_factory=dict)
    null_values: list[str] = Field(default_factory=lambda: [""])


class FeaturesSection(_Section):
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    datetime: list[str] | None = None
    drop: list[str] = Field(default_factory=list)
    categorical_encoding: Literal["auto", "onehot", "ordinal", "target"] = "auto"
    use_sensitive: bool = False


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
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class TrainSection(_Section):
    candidates: list[str] = Field(default_factory=lambda: [
        "linear", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"])
    search_space: dict[str, dict[str, ParamRange]] = Field(default_factory=dict)
    trials: int | None = Field(default=40, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    metric: str | None = None
    backend: Literal["local", "ray"] = "local"
    n_jobs: int = Field(default=-1, description="parallel trials; -1 = all cores")
    cv_folds: int | Literal["auto"] = "auto"
    seed: int = 42

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CANDIDATES]
        if unknown:
            raise ValueError(f"unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
        if not value:
            raise ValueError("name at least one candidate")
        return value

    @model_validator(mode="after")
    def _budget(self) -> TrainSection:
        if self.trials is None and self.time_budget_s is None:
            raise ValueError("set trials, time_budget_s, or both")
        known = {m for metrics in METRICS.values() for m in metrics}
        if self.metric is not None and self.metric not in known:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {sorted(known)}")
        for name in self.search_space:
            if name not in self.candidates:
                raise ValueError(f"search_space names {name!r}, which is not a candidate")
        return self


class ProjectConfig(_Section):
    project: ProjectSection = Field(default_factory=ProjectSection)
    data: DataSection = Field(default_factory=DataSection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    train: TrainSection = Field(default_factory=TrainSection)
    # Reserved for the parts that fill them; accepted so a project file can grow ahead.
    gates: dict[str, Any] | None = None
    serve: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None


def load_config(path: str | Path | None = None) -> ProjectConfig | None:
    """Return the project file at ``path`` (default ./loopml.yaml), or None if there is none."""
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
    return parse_yaml(text, ProjectConfig, origin=str(file),
                      shape="a mapping with sections such as project: and data:")
