"""The folder job on several worker processes of this machine (`faceshield protect --workers N`).

Each worker process loads the models once and takes whole batches of the plan: it reads and
decodes the files itself (`batch_work.prepare`), protects them (`Worker.protect_batch`) and
sends back each image's record and PNG; this process writes them as each batch ends (the same
JSONL log, atomic writes and resume as the one-process path). Images travel between the
processes through pipes, in memory: nothing is written but the outputs asked for.

Why processes as well as threads: one process's threads split each convolution and wait at every
join, which stops scaling on many cores; several processes each keep their own cores busy on
their own images. On the 2-core development box it buys nothing (0.050 images/s on two
one-thread workers against 0.052 on one two-thread process; benchmarks/results/
folder-default-cpu.md), so the default stays one process. Each worker holds its own copy of the
models (several hundred MB) and pays its own start-up (about 5 s).

Workers start with `spawn` (a fresh interpreter each): forking a process in which PyTorch has
started its thread pool can deadlock.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from faceshield.engine.errors import InvalidInputError

from .batch_job import Item, Plan, ResultLog, write_batch
from .batch_local import batches
from .batch_work import JobOptions, Worker, engine_from_options, prepare
from .progress import BatchProgress

_worker: Worker | None = None  # in each worker process: its engine, loaded once
_failed_start: str | None = None  # in each worker process: why the models did not load


def choose_workers(value: str, images: int, device: str) -> int:
    """--workers: a number, or auto: on a CPU, one per core other work leaves idle (each on one
    thread); on a GPU, one (the device is the bottleneck, and each worker would hold the models
    in its memory). Never more than there are images to protect."""
    from .common import choose_threads

    if check_workers(value) == "auto":
        n = choose_threads("auto") if device == "cpu" else 1
    else:
        n = int(value)
    return max(1, min(n, images))


def check_workers(value: str) -> str:
    """--workers as given, once it is auto or a positive integer (checked before any work)."""
    if value != "auto" and not (value.isdigit() and int(value) >= 1):
        raise InvalidInputError("workers", f"expected auto or a positive integer, got {value!r}")
    return value


def _start(model_options: dict, options: JobOptions) -> None:
    global _worker, _failed_start
    try:
        _worker = Worker(engine_from_options(model_options, options), options)
    except Exception as exc:  # reported with the first batch, where the parent can raise it
        _failed_start = str(exc) or exc.__class__.__name__


def _protect(items: list[Item], options: JobOptions) -> list[tuple[dict, bytes | None]]:
    if _worker is None:
        raise InvalidInputError("models", f"a worker process could not load the models: {_failed_start}")
    return _worker.protect_batch([prepare(item, options) for item in items])


def threads_each(requested: str, workers: int) -> str:
    """PyTorch threads per worker: what --threads asks for, or under auto the idle cores shared
    out (one each when there are as many workers as cores)."""
    from .common import usable_cores

    if requested != "auto" or workers == 1:
        return requested
    return str(max(1, usable_cores() // workers))


def run_pool(
    plan: Plan, options: JobOptions, model_options: dict, workers: int, batch_size: int, progress: BatchProgress
) -> int:
    """Protect every image still to do on `workers` processes; returns how many failed. Batches
    go out in plan order, at most two per worker ahead, and are written as each ends. Batches are
    cut no larger than gives every worker some (a CPU gains nothing from batching; a worker
    without a batch gains nothing at all)."""
    size = max(1, min(batch_size, math.ceil(len(plan.todo) / workers)))
    groups = batches(plan.todo, size)
    log = ResultLog(plan.log_path)
    failed = 0
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(model_options, options),
    )
    pending: set[Future] = set()
    todo = iter(groups)
    try:
        while True:
            while len(pending) < 2 * workers and (group := next(todo, None)) is not None:
                pending.add(pool.submit(_protect, group, options))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                failed += write_batch(plan, log, f.result(), progress)
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        raise InvalidInputError(
            "workers", "a worker process died (out of memory?); run again to resume, with fewer --workers"
        ) from None
    except BaseException:  # Ctrl-C, a write that failed: stop now; what was written stays, resume does the rest
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        log.close()
    pool.shutdown(wait=True)
    return failed
