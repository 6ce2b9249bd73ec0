"""`loopml monitor` as a service: one pass, or passes every N seconds (``--follow``).

The command line and the demo call :func:`monitor_once` / :func:`follow`; each pass is a
:class:`~loopml.monitor.runner.Monitor` pass, then the report (HTML with plots + JSON) is
written where the caller asked.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.monitor.runner import PassResult, Progress
    from loopml.monitor.settings import MonitorSection
    from loopml.registry.registry import Registry
    from loopml.workspace import Workspace


@dataclass
class MonitorOutcome:
    """One pass and the report written after it."""

    result: PassResult
    report: dict[str, Any]
    html: Path | None
    json: Path | None
    served: int | None  # the version the alias points at now (None: no alias given)


def model_name(ref: str) -> tuple[str, str | None]:
    """Return ``(name, alias or version text)`` of ``NAME`` or ``NAME@ALIAS``.

    >>> model_name("credit@champion"), model_name("credit")
    (('credit', 'champion'), ('credit', None))
    """
    name, _, alias = ref.partition("@")
    if not name:
        raise InvalidInput(f"model {ref!r}: expected NAME or NAME@ALIAS (e.g. credit@champion)")
    return name, alias or None


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """Return the moment ``--since`` names: an ISO date/time (UTC without a zone) or a span back.

    >>> from datetime import datetime, UTC
    >>> parse_since("2026-11-30").isoformat()
    '2026-11-30T00:00:00+00:00'
    >>> parse_since("1d", now=datetime(2026, 11, 30, 12, tzinfo=UTC)).isoformat()
    '2026-11-29T12:00:00+00:00'
    """
    from datetime import UTC, timedelta

    from loopml.monitor.settings import parse_window

    if text is None:
        return None
    try:
        kind, size = parse_window(text)
    except ValueError:
        kind, size = "", 0
    if kind == "time":
        return (now or datetime.now(UTC)) - timedelta(seconds=size)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--since: expected an ISO date/time (2026-11-30, 2026-11-30T12:00) "
                           f"or a span back (6h, 7d), got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def default_log_dir(workspace: Workspace, settings: MonitorSection) -> str:
    """Return the prediction log folder: ``monitor.log_dir`` or ``<workspace>/predictions``."""
    return settings.log_dir or str(workspace.home / "predictions")


def monitor_once(registry: Registry, ref: str, *, settings: MonitorSection, log_dir: str,
                 window: str | None = None, since: datetime | None = None,
                 report_dir: Path | None = None, rebuild: bool = False,
                 settle_seconds: float = 5.0, progress: Progress | None = None
                 ) -> MonitorOutcome:
    """Run one pass of the monitor of ``ref`` and write its report into ``report_dir``."""
    from loopml.monitor.report_html import write_report
    from loopml.monitor.runner import Monitor, cursor_name

    name, alias = model_name(ref)
    registry.models.get(name)  # NotFound with the known names when it is not registered
    served = registry.get(ref).version if alias else None
    monitor = Monitor(registry, name, settings=settings, log_dir=log_dir, window=window,
                      settle_seconds=settle_seconds)
    if rebuild:
        registry.client.store.monitoring.reset(name, monitor.window,
                                               cursor=cursor_name(name, monitor.window))
    result = monitor.run_pass(progress=progress)
    report = monitor.report(since=since)
    report["served_version"] = served
    report["skipped"] = [{"path": p, "reason": r} for p, r in result.skipped]
    html = json_path = None
    if report_dir is not None:
        from loopml.registry.export import file_safe

        html, json_path = write_report(report, report_dir,
                                       stem=f"monitor-{file_safe(name)}-{file_safe(monitor.window)}")
    return MonitorOutcome(result, report, html, json_path, served)


def follow(registry: Registry, ref: str, *, interval: float,
           on_pass: Callable[[MonitorOutcome], None], passes: int | None = None,
           **options: Any) -> None:
    """Run :func:`monitor_once` every ``interval`` seconds until Ctrl-C (or ``passes``).

    The cursor lives in the store, so a follower that is stopped and started again (or
    runs from cron instead) carries on where the last pass stopped, without counting a
    segment twice.
    """
    from loopml.errors import ConflictError

    done = 0
    while passes is None or done < passes:
        started = time.monotonic()
        # another monitor read those segments first: the next pass goes on from there
        with contextlib.suppress(ConflictError):
            on_pass(monitor_once(registry, ref, **options))
        options["rebuild"] = False  # only the first pass starts over
        done += 1
        if passes is not None and done >= passes:
            return
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
