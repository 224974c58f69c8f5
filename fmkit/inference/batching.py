"""Server-side dynamic batching: requests that arrive together share one forward pass.

One asyncio task collects queued requests: it waits for the first, then up to `max_wait_ms` for more
(until `max_batch_size` texts), and hands the batch to ONE worker thread. While that thread runs a
forward pass, new requests pile up in the queue and form the next batch, so under load batches fill
by themselves and an idle server adds at most `max_wait_ms` latency. With batching off every request
is its own forward pass (still one at a time: concurrent passes would only fight over the cores).

Work is registered per operation ("predict", "embed", or any route provider's own) as a function
`list[str] -> list[result]`; one batch only ever holds requests of one operation. The function sorts
by length itself (the Predictor does), so padding stays small inside the coalesced batch.

No request can break another: when a coalesced forward pass raises, each of its requests is run again
on its own, so only the request whose texts fail gets the exception and the others get exactly the
results they would have had alone (the server also rejects untokenizable texts before they are queued;
this is the defence for whatever that check cannot foresee).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

BatchFn = Callable[[list[str]], list[Any]]


class QueueFull(Exception):
    """The batcher holds `max_queue` requests already: the caller should answer 503 + Retry-After."""


@dataclass
class _Item:
    op: str
    texts: list[str]
    future: asyncio.Future[list[Any]]
    enqueued: float = field(default_factory=time.perf_counter)


class BatchObserver:
    """Hooks for metrics; the default does nothing."""

    def batch_done(self, op: str, texts: int, requests: int, seconds: float) -> None:
        pass

    def batch_isolated(self, op: str, requests: int, failed: int) -> None:
        """A coalesced pass of `requests` requests raised; retried one by one, `failed` of them failed alone."""


class DynamicBatcher:
    def __init__(self, ops: dict[str, BatchFn], max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 max_queue: int = 512, enabled: bool = True, observer: BatchObserver | None = None) -> None:
        self.ops = dict(ops)
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self.observer = observer or BatchObserver()
        self.forward_passes = 0
        self._queue: asyncio.Queue[_Item] | None = None
        self._pending: _Item | None = None  # taken from the queue but belonging to the next batch
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fmkit-infer")

    def register(self, op: str, fn: BatchFn) -> None:
        self.ops[op] = fn

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a forward pass)."""
        return (self._queue.qsize() if self._queue is not None else 0) + (self._pending is not None)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._collect(), name="fmkit-batcher")

    async def stop(self) -> None:
        """Finish everything queued, then stop (graceful shutdown)."""
        if self._queue is not None and self._task is not None:
            while self.depth and not self._task.done():
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, op: str, texts: list[str]) -> list[Any]:
        if self._queue is None:
            raise RuntimeError("DynamicBatcher.start() was not awaited")
        if op not in self.ops:
            raise KeyError(op)
        if self.depth >= self.max_queue:
            raise QueueFull
        item = _Item(op, texts, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        return await item.future

    async def _collect(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            first = self._pending or await queue.get()
            self._pending = None
            if first.future.done():  # timed out or client gone before its turn: skip the work
                continue
            batch = [first]
            size = len(first.texts)
            if self.enabled:
                deadline = loop.time() + self.max_wait
                while size < self.max_batch_size:
                    if not queue.qsize():
                        # Short sleeps, not wait_for(queue.get()): a cancelled get can drop an item on 3.11.
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        await asyncio.sleep(min(remaining, 0.0005))
                        continue
                    item = queue.get_nowait()
                    if item.future.done():
                        continue
                    if item.op != first.op or size + len(item.texts) > self.max_batch_size:
                        self._pending = item  # starts the next batch
                        break
                    batch.append(item)
                    size += len(item.texts)
            await self._run(first.op, batch)

    async def _run(self, op: str, batch: list[_Item]) -> None:
        texts = [t for item in batch for t in item.texts]
        start = time.perf_counter()
        try:
            results = await self._forward(op, texts)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], error=exc)
            else:
                await self._isolate(op, batch)
            return
        self.observer.batch_done(op, len(texts), len(batch), time.perf_counter() - start)
        offset = 0
        for item in batch:
            _settle(item, results[offset : offset + len(item.texts)])
            offset += len(item.texts)

    async def _isolate(self, op: str, batch: list[_Item]) -> None:
        """The shared pass failed: run every request alone, so only the one(s) that fail on their own
        texts get an error. The results of the others are what they get alone (same function, same texts)."""
        failed = 0
        for item in batch:
            if item.future.done():  # timed out or gone meanwhile: nobody waits for the answer
                continue
            start = time.perf_counter()
            try:
                results = await self._forward(op, item.texts)
            except Exception as exc:
                failed += 1
                _settle(item, error=exc)
                continue
            self.observer.batch_done(op, len(item.texts), 1, time.perf_counter() - start)
            _settle(item, results)
        self.observer.batch_isolated(op, len(batch), failed)

    async def _forward(self, op: str, texts: list[str]) -> list[Any]:
        """One forward pass in the inference thread; a result count that does not match is a failure too
        (it would hand one request another's results)."""
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.ops[op], texts)
        finally:
            self.forward_passes += 1
        if len(results) != len(texts):
            raise RuntimeError(f"operation '{op}' returned {len(results)} results for {len(texts)} texts")
        return results


def _settle(item: _Item, results: list[Any] | None = None, error: Exception | None = None) -> None:
    if item.future.done():
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(results if results is not None else [])
