"""Micro-batching: concurrent requests answered by one model call, behind a bounded queue.

Requests wait in an asyncio queue of at most ``max_queue_rows`` rows; a full queue refuses
at once (:class:`QueueFull`, answered 503) rather than growing. One worker takes the first
waiting request, then every request already queued (and, with ``max_latency_ms`` above 0,
those arriving within that wait) up to ``max_batch_size`` rows, and runs the model once on
their rows in a thread, so the event loop keeps accepting requests meanwhile. Under load a
batch forms while the previous one runs; a lone request waits for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError

if TYPE_CHECKING:
    from loopml.serve.inputs import Columns


class QueueFull(LoopmlError):
    """The server has more rows waiting than ``max_queue_rows``: try again shortly."""


@dataclass
class Job:
    """One request's rows waiting for the model."""

    arrays: Columns
    raw: dict[str, list[Any]]
    rows: int
    future: asyncio.Future[Any]
    model: Any = None  # what the rows were checked against: the batch runs that one
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class _Failed:
    error: BaseException


# (the jobs of one batch) -> one result per job, computed in a worker thread
RunBatch = Callable[[list[Job]], list[Any]]


class MicroBatcher:
    """Group concurrent jobs into model calls of at most ``max_batch_size`` rows."""

    def __init__(self, run: RunBatch, *, max_batch_size: int = 256, max_latency_ms: float = 0.0,
                 max_queue_rows: int = 20_000,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        self.max_queue_rows = max_queue_rows
        self.on_batch = on_batch  # (rows in the batch, rows still queued) for metrics
        self.queued_rows = 0
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: Job | None = None
        self._running: list[Job] = []

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._work(), name="loopml-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = [*self._running, *([self._carry] if self._carry else [])]
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:  # nobody is left hanging
            if not job.future.done():
                job.future.set_exception(QueueFull("the server is shutting down"))

    async def submit(self, arrays: Columns, raw: dict[str, list[Any]], rows: int, *,
                     model: Any = None) -> Any:
        """Return the result for one request's rows once its batch has run."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if self.queued_rows + rows > self.max_queue_rows and self.queued_rows > 0:
            raise QueueFull(f"{self.queued_rows} rows are waiting (limit "
                            f"{self.max_queue_rows}); retry shortly")
        job = Job(arrays, raw, rows, asyncio.get_running_loop().create_future(), model=model)
        self.queued_rows += rows
        self._queue.put_nowait(job)
        return await job.future

    async def _next_batch(self) -> list[Job]:
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, rows = [first], first.rows
        deadline = time.perf_counter() + self.max_latency_ms / 1000
        while rows < self.max_batch_size:
            if not self._queue.empty():
                job = self._queue.get_nowait()
            else:
                wait = deadline - time.perf_counter()
                if wait <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), wait)
                except TimeoutError:
                    break
            if rows + job.rows > self.max_batch_size:
                self._carry = job  # starts the next batch: a batch never splits a request
                break
            batch.append(job)
            rows += job.rows
        return batch

    async def _work(self) -> None:
        while True:
            batch = self._running = await self._next_batch()
            rows = sum(job.rows for job in batch)
            self.queued_rows -= rows
            if self.on_batch is not None:
                self.on_batch(rows, self.queued_rows)
            try:
                results = await asyncio.to_thread(self.run, batch)
            except Exception as exc:
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(exc)
                    continue
                # One request's rows broke the call: each job alone, so only that one fails.
                results = []
                for job in batch:
                    try:
                        results.extend(await asyncio.to_thread(self.run, [job]))
                    except Exception as alone:
                        results.append(_Failed(alone))
            for job, result in zip(batch, results, strict=True):
                if job.future.done():  # the client may have gone away
                    continue
                if isinstance(result, _Failed):
                    job.future.set_exception(result.error)
                else:
                    job.future.set_result(result)
