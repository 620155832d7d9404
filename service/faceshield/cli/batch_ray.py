"""The folder job as a Ray Data pipeline (`faceshield protect --ray ADDRESS`, the `cluster` extra).

One row per batch of the plan (the same batches as the local path, so the same results):

1. `_prepare_rows` (CPU tasks): read, decode, orient, convert colour, find faces (`batch_work.prepare`);
2. `ProtectActor` (an actor pool, `--ray-workers` actors with `--ray-gpus` GPUs each, 0 on CPU
   clusters): each actor loads the models once and protects the batches sent to it;
3. the driver writes each batch's outputs and log lines as its row arrives (atomic writes, the
   same JSONL log and resume as the local path).

Every worker must see the input files and the model set under the same paths as the driver
(a shared filesystem or the same container image) and run the same FaceShield. Rows carry the
prepared images and results between stages as pickled bytes, inside the cluster only.
"""

from __future__ import annotations

import argparse
import json
import pickle
import socket
from dataclasses import asdict

from faceshield.engine.errors import InvalidInputError

from .batch_job import Item, Plan, ResultLog, write_batch
from .batch_local import batches
from .batch_work import MODEL_OPTIONS, JobOptions, Worker, engine_from_options, prepare
from .progress import BatchProgress

CONNECT_TIMEOUT = 5.0


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InvalidInputError("ray", "the Ray path needs Ray: pip install 'faceshield[cluster]'") from None
    return ray


def check_address(address: str) -> None:
    """Refuse at once, naming it, an address where nothing answers (ray.init would retry for minutes)."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInputError("ray", f"expected auto, local or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise InvalidInputError(
            "ray",
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); check the address, or start one "
            "with `ray start --head`",
        ) from None


def connect(address: str):
    """The Ray client: the session this process already has (a test's, a notebook's), else
    `ray.init(address)` once the address answers. Returns (ray, started_here)."""
    ray = _import_ray()
    if ray.is_initialized() and address in ("auto", "local"):
        return ray, False
    check_address(address)
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidInputError("ray", f"cannot connect to Ray at {address}: {exc}") from None
    return ray, True


def _prepare_rows(row: dict, options: JobOptions) -> dict:
    items = [Item(*i) for i in json.loads(row["items"])]
    return {"batch": row["batch"], "prepared": pickle.dumps([prepare(i, options) for i in items])}


class ProtectActor:
    """Loads the models once per worker; protects one batch (row) at a time."""

    def __init__(self, model_options: dict, options: JobOptions):
        self.worker = Worker(engine_from_options(model_options, options), options)

    def __call__(self, row: dict) -> dict:
        results = self.worker.protect_batch(pickle.loads(row["prepared"]))
        return {"batch": row["batch"], "results": pickle.dumps(results)}


def run_ray(plan: Plan, options: JobOptions, args: argparse.Namespace, batch_size: int, progress: BatchProgress) -> int:
    """Protect every image still to do on the Ray cluster at `args.ray`; returns how many failed."""
    ray, started = connect(args.ray)
    groups = batches(plan.todo, batch_size)
    model_options = {k: getattr(args, k, None) for k in MODEL_OPTIONS}
    rows = [{"batch": b, "items": json.dumps([list(asdict(i).values()) for i in g])} for b, g in enumerate(groups)]
    workers = max(1, min(args.ray_workers, len(groups)))
    log = ResultLog(plan.log_path)
    failed = 0
    try:
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map(_prepare_rows, fn_kwargs={"options": options}, num_cpus=1)
        ds = ds.map(
            ProtectActor,
            fn_constructor_kwargs={"model_options": model_options, "options": options},
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=args.ray_gpus,
            num_cpus=1,
        )
        for row in ds.iter_rows():
            failed += write_batch(plan, log, pickle.loads(row["results"]), progress)
    finally:
        log.close()
        if started:
            ray.shutdown()
    return failed
