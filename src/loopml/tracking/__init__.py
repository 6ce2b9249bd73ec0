"""Experiment tracking: runs, params, metrics, tags and artifacts.

Public surface: :func:`start_run`, :func:`active_run`, :class:`TrackingClient`, :class:`ActiveRun`.
"""

from __future__ import annotations

from loopml.tracking.client import TrackingClient
from loopml.tracking.context import active_run, default_client, start_run
from loopml.tracking.run import ActiveRun

__all__ = ["ActiveRun", "TrackingClient", "active_run", "default_client", "start_run"]
