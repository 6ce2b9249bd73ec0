"""Plain value objects the store hands out; no database session travels with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RunRecord:
    id: str
    project: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None = None
    parent_id: str | None = None
    error: str | None = None
    host: str | None = None
    pid: int | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, or None while the run is open."""
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(frozen=True)
class MetricPoint:
    key: str
    step: int
    value: float
    timestamp_ms: int


@dataclass(frozen=True)
class ArtifactRecord:
    run_id: str
    name: str
    sha256: str
    size: int
    media_type: str
    created_at: datetime


@dataclass(frozen=True)
class RunDetail:
    """A run with everything logged to it, as `loopml runs show` prints it."""

    run: RunRecord
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricPoint] = field(default_factory=dict)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
