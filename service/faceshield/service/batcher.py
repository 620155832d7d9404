"""Micro-batching with admission control: many callers share one device.

Requests wait in one bounded FIFO queue. A single loop takes the oldest request, waits at most
`max_wait` seconds for others with the same key to join it (up to `max_batch`), and runs them as
one batch on a worker thread, so the event loop never blocks on the engine. While a batch runs,
new requests pile up and form the next one: under load batches fill without any waiting.

The queue is bounded twice, by items and by their decoded bytes (64 waiting 40 MP images would
be 7.7 GB): a full queue refuses new requests at once (`Overloaded`, with a retry delay estimated
from recent batch times) instead of building an unbounded backlog. Each request's deadline and its caller's
cancellation are polled by the engine once per attack step (`cancelled` below), so abandoned work
leaves its batch at the next step instead of being computed to the end.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import CallerGone, DeadlinePassed, Draining, Overloaded

log = logging.getLogger(__name__)

# runner(payloads, cancelled) -> one entry per payload: a result, None (cancelled mid-batch) or an
# exception for that item alone. `cancelled()` returns one flag per payload.
Runner = Callable[[list[Any], Callable[[], list[bool]]], Sequence[Any]]

MIN_RETRY_SECONDS = 0.05
MAX_RETRY_SECONDS = 30.0


class BatchObserver(Protocol):
    """What the batcher reports (the Prometheus metrics implement it)."""

    def queue_depth(self, depth: int) -> None: ...
    def batch_done(self, size: int, seconds: float) -> None: ...
    def item_dropped(self, reason: str) -> None: ...


class _NullObserver:
    def queue_depth(self, depth: int) -> None:
        pass

    def batch_done(self, size: int, seconds: float) -> None:
        pass

    def item_dropped(self, reason: str) -> None:
        pass


@dataclass
class Done:
    """A finished item: the runner's result and how it got there."""

    result: Any
    queue_seconds: float
    batch_size: int


@dataclass(eq=False)
class _Item:
    key: Hashable
    payload: Any
    runner: Runner
    deadline: float | None  # time.monotonic() seconds
    future: asyncio.Future
    nbytes: int = 0  # decoded size of the payload, counted against queue_bytes
    enqueued: float = field(default_factory=time.monotonic)
    abandoned: bool = False  # the caller went away; read from the worker thread

    def stopped(self, now: float) -> bool:
        return self.abandoned or (self.deadline is not None and now >= self.deadline)

    def stop_reason(self, now: float) -> str:
        return "cancelled" if self.abandoned else "deadline"


class MicroBatcher:
    """Groups concurrent requests by key into bounded batches run on `executor`.

    Args:
        executor: where runners run; one thread, since the engine serializes on its device.
        max_batch: most items per batch.
        max_wait: seconds the oldest item waits for batch-mates before its batch starts.
        queue_length: most items waiting (not yet running); beyond it `submit` refuses.
        queue_bytes: most decoded bytes waiting (None: no bound). An item larger than this
            alone still enters an empty queue, so that every admissible image can be served.
        observer: receives queue depth, batch sizes and times, drops.
    """

    def __init__(
        self,
        executor: Executor,
        max_batch: int,
        max_wait: float,
        queue_length: int,
        queue_bytes: int | None = None,
        observer: BatchObserver | None = None,
    ):
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.queue_length = queue_length
        self.queue_bytes = queue_bytes
        self.observer = observer or _NullObserver()
        self._pending: collections.deque[_Item] = collections.deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._running = 0
        self._batch_seconds = 1.0  # moving average, for retry hints
        self.batches = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="faceshield-batcher")

    async def close(self) -> None:
        """Refuse new items; finish those queued and running; stop the loop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return sum(it.nbytes for it in self._pending)

    @property
    def running(self) -> int:
        return self._running

    def _fits(self, nbytes: int) -> bool:
        if len(self._pending) >= self.queue_length:
            return False
        return self.queue_bytes is None or not self._pending or self.pending_bytes + nbytes <= self.queue_bytes

    def retry_after(self) -> float:
        """A guess at when the queue will have room: the batches ahead times their cost."""
        batches_ahead = len(self._pending) // self.max_batch + 1
        return min(max(batches_ahead * self._batch_seconds, MIN_RETRY_SECONDS), MAX_RETRY_SECONDS)

    # -- callers ---------------------------------------------------------------------------
    def check_room(self, nbytes: int = 0) -> None:
        """Raise Overloaded now if `submit` of `nbytes` would (lets callers refuse before
        decoding, with nbytes 0, and again once the decoded size is known)."""
        if self._closing:
            raise Draining("the server is shutting down; retry on another replica")
        if not self._fits(nbytes):
            raise Overloaded(
                f"the server is busy ({len(self._pending)} images, {self.pending_bytes / 2**20:.0f} MiB waiting); "
                "retry later",
                retry_after=self.retry_after(),
            )

    async def submit(
        self,
        key: Hashable,
        payload: Any,
        runner: Runner,
        deadline: float | None = None,
        wait_for_room: bool = False,
        nbytes: int = 0,
    ) -> Done:
        """Queue one item and wait for its result.

        deadline: time.monotonic() after which the item is dropped (DeadlinePassed).
        nbytes: the payload's decoded size, counted against `queue_bytes`.
        wait_for_room: wait while the queue is full instead of raising Overloaded (streams do,
            so that their senders are slowed down by flow control rather than refused).
        """
        if not wait_for_room:
            self.check_room(nbytes)
        if self._closing:
            raise Draining("the server is shutting down; retry on another replica")
        while not self._fits(nbytes):
            self._room.clear()
            await self._room.wait()
            if self._closing:
                raise Draining("the server is shutting down; retry on another replica")
        if deadline is not None and time.monotonic() >= deadline:
            self.observer.item_dropped("deadline")
            raise DeadlinePassed("the deadline passed before the image was queued")
        item = _Item(key, payload, runner, deadline, asyncio.get_running_loop().create_future(), nbytes=nbytes)
        self._pending.append(item)
        self.observer.queue_depth(len(self._pending))
        self._wake.set()
        try:
            return await item.future
        except asyncio.CancelledError:
            # The caller is gone: leave the queue, or leave the running batch at its next step.
            item.abandoned = True
            if item in self._pending:
                self._pending.remove(item)
                self.observer.item_dropped("cancelled")
                self._changed()
            raise

    # -- the loop --------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            first = self._pending[0]
            gather_until = first.enqueued + self.max_wait
            while self._count(first.key) < self.max_batch and not self._closing:
                remaining = gather_until - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take(first.key)
            if batch:
                await self._run(batch)

    def _count(self, key: Hashable) -> int:
        return sum(1 for it in self._pending if it.key == key)

    def _take(self, key: Hashable) -> list[_Item]:
        """Up to max_batch live items with `key`, oldest first; expired ones are answered now."""
        now = time.monotonic()
        batch: list[_Item] = []
        keep: collections.deque[_Item] = collections.deque()
        for it in self._pending:
            if it.key != key or len(batch) >= self.max_batch:
                keep.append(it)
            elif it.stopped(now):
                self._drop(it, now)
            else:
                batch.append(it)
        self._pending = keep
        self._changed()
        return batch

    async def _run(self, batch: list[_Item]) -> None:
        started = time.monotonic()

        def cancelled() -> list[bool]:  # called from the worker thread, once per attack step
            now = time.monotonic()
            return [it.stopped(now) for it in batch]

        self._running = len(batch)
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.executor,
                batch[0].runner,
                [it.payload for it in batch],
                cancelled,
            )
            if len(results) != len(batch):
                raise RuntimeError(f"runner returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # the whole batch failed: every item gets the error
            log.exception("batch of %d failed", len(batch))
            results = [exc] * len(batch)
        finally:
            self._running = 0
        seconds = time.monotonic() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
        self.batches += 1
        self.observer.batch_done(len(batch), seconds)
        now = time.monotonic()
        for it, result in zip(batch, results, strict=True):
            if result is None:
                self._drop(it, now)
            elif it.future.done():
                continue
            elif isinstance(result, BaseException):
                it.future.set_exception(result)
            else:
                it.future.set_result(Done(result, started - it.enqueued, len(batch)))

    def _drop(self, item: _Item, now: float) -> None:
        reason = item.stop_reason(now)
        self.observer.item_dropped(reason)
        if not item.future.done():
            error = (
                CallerGone("the call was cancelled")
                if reason == "cancelled"
                else DeadlinePassed("the deadline passed before the image was done")
            )
            item.future.set_exception(error)

    def _changed(self) -> None:
        """Items left the queue: report its depth and wake whoever waits for room (each
        rechecks whether its own item fits)."""
        self.observer.queue_depth(len(self._pending))
        self._room.set()
