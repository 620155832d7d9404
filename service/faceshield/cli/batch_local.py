"""The folder job on this machine: files read and decoded on a few threads ahead of the engine,
which protects them in batches (as the service batches), results written as each batch ends."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .batch_job import Item, Plan, ResultLog, write_batch
from .batch_work import JobOptions, Prepared, Worker, prepare
from .progress import BatchProgress

READ_THREADS = 2


def batches(items: list[Item], size: int) -> list[list[Item]]:
    """Consecutive items in plan order: the same batches on every path, so the same results."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _prepared(groups: list[list[Item]], options: JobOptions, pool: ThreadPoolExecutor) -> Iterator[list[Prepared]]:
    """Each batch prepared, the next one read while the engine works on this one."""
    ahead: list[list[Future]] = []
    it = iter(groups)
    for _ in range(2):
        group = next(it, None)
        if group is not None:
            ahead.append([pool.submit(prepare, item, options) for item in group])
    while ahead:
        current = ahead.pop(0)
        group = next(it, None)
        if group is not None:
            ahead.append([pool.submit(prepare, item, options) for item in group])
        yield [f.result() for f in current]


def run_local(plan: Plan, options: JobOptions, engine, batch_size: int, progress: BatchProgress) -> int:
    """Protect every image still to do; returns how many failed in this run."""
    worker = Worker(engine, options)
    log = ResultLog(plan.log_path)
    failed = 0
    pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="faceshield-read")
    try:
        for batch in _prepared(batches(plan.todo, batch_size), options, pool):
            failed += write_batch(plan, log, worker.protect_batch(batch), progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        log.close()
    return failed
