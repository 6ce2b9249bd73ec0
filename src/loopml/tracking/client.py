"""The explicit tracking client: one metadata store, one artifact store, one metric buffer."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.store.records import ArtifactRecord, MetricPoint, RunDetail, RunRecord
from loopml.tracking.buffer import MetricBuffer
from loopml.tracking.payload import payloads

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.store import Store
    from loopml.tracking.run import ActiveRun
    from loopml.workspace import Workspace


class TrackingClient:
    """Start runs and read what was recorded, against explicit stores.

    Examples
    --------
    >>> client = TrackingClient.from_workspace(Workspace.from_env("/tmp/ws"))  # doctest: +SKIP
    >>> with client.start_run("baseline", project="credit") as run:           # doctest: +SKIP
    ...     run.log_metric("auc", 0.91)
    """

    def __init__(self, store: Store, artifacts: ArtifactStore, *,
                 batch_size: int = 50_000, flush_interval_s: float = 2.0) -> None:
        self.store = store
        self.artifacts = artifacts
        self.metric_buffer = MetricBuffer(
            store.metrics.write_batch, batch_size=batch_size, interval_s=flush_interval_s
        )
        self._open: dict[str, ActiveRun] = {}
        self._open_lock = threading.Lock()

    @classmethod
    def from_workspace(cls, workspace: Workspace, *, create: bool = True) -> TrackingClient:
        """Connect to a workspace's stores (creating them if ``create``); return a client."""
        store, artifacts = workspace.open(create=create)
        return cls(store, artifacts)

    # -- writing ---------------------------------------------------------------------------
    def start_run(
        self,
        name: str,
        *,
        project: str | None = None,
        parent: str | ActiveRun | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ActiveRun:
        """Create a RUNNING run and return its handle (use it in a ``with`` block).

        The project defaults to the parent run's, else ``"default"``.
        """
        from loopml.tracking.run import ActiveRun

        parent_id = parent if isinstance(parent, str) or parent is None else parent.id
        record = self.store.runs.create(project=project, name=name, parent_id=parent_id,
                                        tags=tags)
        run = ActiveRun(self, record)
        with self._open_lock:
            self._open[run.id] = run
        return run

    def log_artifact(self, run_id: str, obj: object, *, name: str | None = None
                     ) -> list[ArtifactRecord]:
        """Store ``obj``'s bytes and record them as named artifacts of ``run_id``.

        A folder is all or nothing: every name is checked before any byte is stored, and
        its files are recorded in one transaction.
        """
        from loopml.store.artifact_index import ArtifactRow, check_artifact_name

        items = list(payloads(obj, name))
        for payload in items:
            check_artifact_name(payload.name)
        rows = []
        for payload in items:
            if payload.path is not None:
                blob = self.artifacts.put_file(payload.path,
                                               follow_symlinks=not payload.in_folder)
            else:
                blob = self.artifacts.put_bytes(payload.data or b"")
            rows.append(ArtifactRow(name=payload.name, sha256=blob.sha256, size=blob.size,
                                    media_type=payload.media_type))
        return self.store.artifacts.record_many(run_id, rows)

    def forget(self, run: ActiveRun) -> None:
        """Drop an ended run from the open set."""
        with self._open_lock:
            self._open.pop(run.id, None)

    def open_runs(self) -> list[ActiveRun]:
        """Return the runs this client started that have not ended."""
        with self._open_lock:
            return list(self._open.values())

    def close(self) -> None:
        """Flush buffered points and stop the background writer."""
        self.metric_buffer.close()

    # -- reading ---------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        return self.store.runs.get(run_id)

    def run_detail(self, run_id: str) -> RunDetail:
        return self.store.runs.detail(run_id)

    def list_runs(self, **filters: object) -> list[RunRecord]:
        return self.store.runs.list(**filters)  # type: ignore[arg-type]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return self.store.metrics.history(self.store.runs.resolve(run_id), key)

    def load_artifact(self, run_id: str, name: str) -> bytes:
        """Return the verified bytes of a run's artifact."""
        record = self.store.artifacts.get(self.store.runs.resolve(run_id), name)
        return self.artifacts.get_bytes(record.sha256)

    def download_artifact(self, run_id: str, name: str, dest: str | Path) -> Path:
        """Write a run's artifact to ``dest`` after checking its sha256; return the path."""
        record = self.store.artifacts.get(self.store.runs.resolve(run_id), name)
        return self.artifacts.get_to_path(record.sha256, dest)

    def delete_run(self, run_id: str) -> list[str]:
        """Delete a run and its child runs; return the deleted ids."""
        return self.store.runs.delete(run_id)
