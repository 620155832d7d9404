"""MicroBatcher on its own: grouping, bounds, admission, deadlines, cancellation (no gRPC)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from faceshield.service.batcher import MicroBatcher
from faceshield.service.errors import CallerGone, DeadlinePassed, Draining, Overloaded


class Recorder:
    """A runner that records its batches; optionally waits at a gate, or runs for `steps` polls."""

    def __init__(self, steps: int = 1, step_seconds: float = 0.0):
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()
        self.steps, self.step_seconds = steps, step_seconds
        self.polls = 0

    def __call__(self, payloads, cancelled):
        self.batches.append(list(payloads))
        assert self.gate.wait(10)
        alive = [True] * len(payloads)
        for _ in range(self.steps):
            flags = cancelled()
            self.polls += 1
            alive = [a and not f for a, f in zip(alive, flags, strict=True)]
            if not any(alive):
                break
            time.sleep(self.step_seconds)
        return [p * 10 if a else None for p, a in zip(payloads, alive, strict=True)]


class Observer:
    def __init__(self):
        self.sizes, self.depths, self.drops = [], [], []

    def queue_depth(self, depth):
        self.depths.append(depth)

    def batch_done(self, size, seconds):
        self.sizes.append(size)

    def item_dropped(self, reason):
        self.drops.append(reason)


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


async def started(batcher: MicroBatcher) -> MicroBatcher:
    batcher.start()
    return batcher


async def test_groups_by_key_and_bounds_batches(executor):
    obs, run = Observer(), Recorder()
    b = await started(MicroBatcher(executor, max_batch=3, max_wait=0.05, queue_length=100, observer=obs))
    results = await asyncio.gather(*[b.submit("a" if i % 2 else "b", i, run) for i in range(10)])
    assert [r.result for r in results] == [i * 10 for i in range(10)]
    assert all(len(batch) <= 3 for batch in run.batches)
    for batch in run.batches:
        assert len({p % 2 for p in batch}) == 1  # never mixes keys
    assert max(obs.sizes) == 3 and sum(obs.sizes) == 10
    assert all(r.batch_size >= 1 and r.queue_seconds >= 0 for r in results)
    await b.close()


async def test_lone_request_waits_at_most_max_wait(executor):
    run = Recorder()
    b = await started(MicroBatcher(executor, max_batch=8, max_wait=0.05, queue_length=10))
    t0 = time.monotonic()
    done = await b.submit("k", 1, run)
    assert done.result == 10 and done.batch_size == 1
    assert time.monotonic() - t0 < 2.0
    await b.close()


async def test_full_queue_refuses_with_retry_hint(executor):
    obs, run = Observer(), Recorder()
    run.gate.clear()
    b = await started(MicroBatcher(executor, max_batch=1, max_wait=0, queue_length=2, observer=obs))
    first = asyncio.ensure_future(b.submit("k", 1, run))
    while b.running == 0:
        await asyncio.sleep(0.01)
    waiting = [asyncio.ensure_future(b.submit("k", i, run)) for i in (2, 3)]
    await asyncio.sleep(0.05)
    assert b.depth == 2
    with pytest.raises(Overloaded) as caught:
        await b.submit("k", 4, run)
    assert caught.value.retry_after > 0
    # A stream waits for room instead of being refused.
    patient = asyncio.ensure_future(b.submit("k", 5, run, wait_for_room=True))
    await asyncio.sleep(0.05)
    assert not patient.done()
    run.gate.set()
    assert [(await f).result for f in (first, *waiting, patient)] == [10, 20, 30, 50]
    assert b.depth == 0 and max(obs.depths) == 2
    await b.close()


@pytest.mark.slow
async def test_deadline_drops_item_mid_batch(executor):
    obs, run = Observer(), Recorder(steps=200, step_seconds=0.01)
    b = await started(MicroBatcher(executor, max_batch=4, max_wait=0.02, queue_length=10, observer=obs))
    short = asyncio.ensure_future(b.submit("k", 1, run, deadline=time.monotonic() + 0.2))
    long = asyncio.ensure_future(b.submit("k", 2, run, deadline=time.monotonic() + 60))
    with pytest.raises(DeadlinePassed):
        await short
    assert (await long).result == 20
    assert obs.drops == ["deadline"]
    await b.close()


async def test_expired_before_start_is_never_run(executor):
    run = Recorder()
    b = await started(MicroBatcher(executor, max_batch=4, max_wait=0.0, queue_length=10))
    with pytest.raises(DeadlinePassed):
        await b.submit("k", 1, run, deadline=time.monotonic() - 1)
    assert run.batches == []
    await b.close()


async def test_cancelled_caller_leaves_at_next_step(executor):
    obs, run = Observer(), Recorder(steps=1000, step_seconds=0.01)
    b = await started(MicroBatcher(executor, max_batch=4, max_wait=0.0, queue_length=10, observer=obs))
    task = asyncio.ensure_future(b.submit("k", 1, run))
    while b.running == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while b.running:
        await asyncio.sleep(0.01)
    assert run.polls < 1000  # stopped early, not computed to the end
    assert obs.drops == ["cancelled"]
    await b.close()


async def test_cancelled_while_queued_leaves_the_queue(executor):
    obs, run = Observer(), Recorder()
    run.gate.clear()
    b = await started(MicroBatcher(executor, max_batch=1, max_wait=0, queue_length=10, observer=obs))
    first = asyncio.ensure_future(b.submit("k", 1, run))
    while b.running == 0:
        await asyncio.sleep(0.01)
    queued = asyncio.ensure_future(b.submit("k", 2, run))
    await asyncio.sleep(0.02)
    queued.cancel()
    await asyncio.sleep(0.02)
    assert b.depth == 0 and obs.drops == ["cancelled"]
    run.gate.set()
    assert (await first).result == 10
    assert run.batches == [[1]]
    await b.close()


async def test_item_errors_stay_with_their_item_and_close_refuses(executor):
    def runner(payloads, cancelled):
        return [ValueError(f"bad {p}") if p < 0 else p for p in payloads]

    b = await started(MicroBatcher(executor, max_batch=4, max_wait=0.02, queue_length=10))
    good, bad = await asyncio.gather(b.submit("k", 1, runner), b.submit("k", -1, runner), return_exceptions=True)
    assert good.result == 1 and isinstance(bad, ValueError)
    await b.close()
    with pytest.raises(Draining):
        await b.submit("k", 1, runner)


def test_caller_gone_is_cancelled_status():
    assert CallerGone("x").code.name == "CANCELLED"


async def test_queue_is_bounded_by_decoded_bytes_too(executor):
    """queue_bytes bounds what waits, whatever the count: 64 waiting 40 MP images are 7.7 GB."""
    run = Recorder()
    run.gate.clear()
    b = await started(MicroBatcher(executor, max_batch=1, max_wait=0, queue_length=100, queue_bytes=100))
    first = asyncio.ensure_future(b.submit("k", 1, run, nbytes=1000))  # alone: always admitted
    while b.running == 0:
        await asyncio.sleep(0.01)
    huge = asyncio.ensure_future(b.submit("k", 2, run, nbytes=1000))  # larger than the bound, queue empty
    await asyncio.sleep(0.05)
    assert b.depth == 1 and b.pending_bytes == 1000
    with pytest.raises(Overloaded, match="MiB waiting") as caught:
        await b.submit("k", 3, run, nbytes=1)
    assert caught.value.retry_after > 0
    with pytest.raises(Overloaded):
        b.check_room(1)
    # A stream waits for byte room instead of being refused.
    patient = asyncio.ensure_future(b.submit("k", 4, run, nbytes=60, wait_for_room=True))
    await asyncio.sleep(0.05)
    assert not patient.done() and b.depth == 1
    run.gate.set()
    assert [(await f).result for f in (first, huge, patient)] == [10, 20, 40]
    assert b.depth == 0 and b.pending_bytes == 0
    await b.close()


async def test_small_items_share_the_byte_budget(executor):
    run = Recorder()
    run.gate.clear()
    b = await started(MicroBatcher(executor, max_batch=1, max_wait=0, queue_length=100, queue_bytes=100))
    first = asyncio.ensure_future(b.submit("k", 0, run, nbytes=50))
    while b.running == 0:
        await asyncio.sleep(0.01)
    queued = [asyncio.ensure_future(b.submit("k", i, run, nbytes=40)) for i in (1, 2)]
    await asyncio.sleep(0.05)
    assert b.depth == 2 and b.pending_bytes == 80
    b.check_room(20)
    with pytest.raises(Overloaded):
        b.check_room(21)
    run.gate.set()
    assert [(await f).result for f in (first, *queued)] == [0, 10, 20]
    await b.close()
