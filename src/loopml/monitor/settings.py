"""The ``monitor:`` and ``retrain:`` sections of loopml.yaml: thresholds and the policy.

Written as::

    monitor:
      window: 1d                 # a time window (30m, 6h, 1d, 7d) or a row count (10000rows)
      log_dir: null              # the prediction log (default: <workspace>/predictions)
      drift:
        alpha: 0.05              # significance of the tests, after the correction below
        correction: holm         # holm | bh (Benjamini-Hochberg) | none, across the features
        large_sample_rows: 5000  # windows (and references) at least this large: effect sizes
        wasserstein: 0.1         #   decide, as Wasserstein distance / reference std (numbers)
        jensen_shannon: 0.1      #   and Jensen-Shannon distance (categories),
        psi: 0.25                #   or PSI (both kinds) at or above this
        share: 0.3               # a window drifts when this share of its features drift
        min_rows: 50             # fewer rows in a window: no drift verdict
      quality:
        missing_increase: 0.1    # missing share above the reference's by this much
        out_of_range: 0.01       # share of numbers outside the contract's range
        unseen: 0.01             # share of categories the contract does not know
      performance:
        metric: null             # default: the task's metric of the model card
        max_drop: 0.05           # alert when the window's metric is worse than the card's by this
        min_labeled_rows: 100    # fewer labelled rows: no realised verdict
        label_horizon: 30d       # labels update windows that ended at most this long ago
      webhook: null              # URL that gets a JSON POST per new alert

    retrain:
      on: [drift, performance]   # alerts that trigger `loopml retrain` (and monitor --retrain)
      min_new_labeled_rows: 500  # labelled production rows needed before retraining
      data: recent+training      # recent | recent+training
      holdout: 0.3               # share of recent labelled rows kept aside to gate on
      promote_to: champion       # the alias a challenger that passes every gate moves

Everything has a default, so ``monitor:`` can be left out.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_WINDOW = re.compile(r"^\s*(\d+)\s*(m|h|d|rows)\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_window(text: str) -> tuple[str, int]:
    """Return ``("time", seconds)`` or ``("rows", count)`` of a window written as text.

    >>> parse_window("1d"), parse_window("10000rows"), parse_window("30m")
    (('time', 86400), ('rows', 10000), ('time', 1800))
    """
    match = _WINDOW.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"a window is a positive count of minutes, hours, days or rows "
                         f"(30m, 6h, 1d, 10000rows), got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "rows":
        return "rows", count
    return "time", count * _UNIT_SECONDS[unit]


def _fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{what} must be a number from 0 to 1, got {value}")
    return value


class DriftSettings(_Section):
    alpha: float = 0.05
    correction: Literal["holm", "bh", "none"] = "holm"
    large_sample_rows: int = Field(default=5000, ge=1)
    wasserstein: float = Field(default=0.1, gt=0)
    jensen_shannon: float = Field(default=0.1, gt=0, le=1)
    psi: float = Field(default=0.25, gt=0)
    share: float = 0.3
    min_rows: int = Field(default=50, ge=1)

    @field_validator("alpha", "share")
    @classmethod
    def _fractions(cls, value: float) -> float:
        return _fraction(value, "must be a share")


class QualitySettings(_Section):
    missing_increase: float = 0.1
    out_of_range: float = 0.01
    unseen: float = 0.01

    @field_validator("missing_increase", "out_of_range", "unseen")
    @classmethod
    def _fractions(cls, value: float) -> float:
        return _fraction(value, "a share")


class PerformanceSettings(_Section):
    metric: str | None = None
    max_drop: float = Field(default=0.05, ge=0)
    min_labeled_rows: int = Field(default=100, ge=1)
    label_horizon: str = "30d"

    @field_validator("label_horizon")
    @classmethod
    def _horizon(cls, value: str) -> str:
        if parse_window(value)[0] != "time":
            raise ValueError(f"must be a time span (7d, 30d, 12h), got {value!r}")
        return value.strip()

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from loopml.evaluate.metrics import METRICS

        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; choose from {', '.join(METRICS)}")
        return value


class MonitorSection(_Section):
    window: str = "1d"
    log_dir: str | None = None
    drift: DriftSettings = Field(default_factory=DriftSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    webhook: str | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value.strip()

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


RetrainTrigger = Literal["drift", "performance", "quality"]


class RetrainSection(_Section):
    on: list[RetrainTrigger] = Field(default_factory=lambda: ["drift", "performance"])
    min_new_labeled_rows: int = Field(default=500, ge=1)
    data: Literal["recent", "recent+training"] = "recent+training"
    holdout: float = 0.3
    promote_to: str = "champion"

    @field_validator("holdout")
    @classmethod
    def _holdout(cls, value: float) -> float:
        if isinstance(value, bool) or not (math.isfinite(value) and 0.05 <= value <= 0.9):
            raise ValueError(f"must be a share from 0.05 to 0.9, got {value}")
        return value

    @field_validator("on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
