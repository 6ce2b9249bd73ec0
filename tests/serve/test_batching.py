"""Micro-batching: rows of concurrent requests in one call, a bounded queue, failures kept apart."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loopml.serve.batching import MicroBatcher, QueueFull


def _arrays(value: float, rows: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.full(rows, value)}


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows():
    calls: list[int] = []

    def run(jobs):
        calls.append(sum(job.rows for job in jobs))
        return [job.arrays["x"] * 2 for job in jobs]

    async def main():
        batcher = MicroBatcher(run, max_batch_size=64, max_latency_ms=20)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(_arrays(i, 1 + i % 3), {}, 1 + i % 3)
                                          for i in range(40)))
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    for i, result in enumerate(results):
        assert result.tolist() == [2.0 * i] * (1 + i % 3)
    assert sum(calls) == sum(1 + i % 3 for i in range(40))
    assert len(calls) < 40 and max(calls) <= 64  # batched, never past the limit


def test_a_request_that_breaks_the_model_fails_alone():
    def run(jobs):
        if any(np.isnan(job.arrays["x"]).any() for job in jobs):
            raise ValueError("the model refuses NaN")
        return [job.arrays["x"] + 1 for job in jobs]

    async def main():
        batcher = MicroBatcher(run, max_batch_size=64, max_latency_ms=20)
        await batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(_arrays(np.nan if i == 3 else i), {}, 1) for i in range(10)),
                return_exceptions=True)
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    assert isinstance(results[3], ValueError)
    assert [r.tolist() for i, r in enumerate(results) if i != 3] == \
        [[float(i + 1)] for i in range(10) if i != 3]


def test_a_full_queue_refuses_at_once_instead_of_growing():
    async def main():
        def run(jobs):
            return [job.arrays["x"] for job in jobs]

        batcher = MicroBatcher(run, max_batch_size=1, max_queue_rows=5)
        await batcher.start()
        batcher._task.cancel()  # no worker: everything stays queued
        waiting = [asyncio.ensure_future(batcher.submit(_arrays(i), {}, 1)) for i in range(5)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="5 rows are waiting"):
            await batcher.submit(_arrays(9), {}, 1)
        for task in waiting:
            task.cancel()

    asyncio.run(main())
