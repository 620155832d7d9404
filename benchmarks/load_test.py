"""Load test (not a test): N concurrent callers for a fixed time, engine direct vs the service.

    python benchmarks/load_test.py --callers 8 --seconds 20

Phases, one after another on the same machine and models (the demo set's toy StarGAN, no saliency
model, `pgd`; the centre square of noise images, so no face detection):
  1. engine, direct     N threads call `FaceShieldEngine.protect` with one image each (what a
                        program without the service would do; the engine lock serializes them).
  2. engine, batched    one loop calls `protect` with batches of min(N, max batch): the most the
                        engine alone can give, for reference.
  3. service, unary     N asyncio callers of `ProtectImage` through the SDK, against a
                        `faceshield serve` subprocess on 127.0.0.1 (its micro-batcher at work).
  4. service, stream    one `ProtectStream` keeping N images in flight.
Prints throughput and p50/p95/p99 latency per phase and writes them to benchmarks/results/load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "load.md"


@dataclass
class Phase:
    name: str
    callers: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    images: int = 0

    @property
    def throughput(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    def row(self) -> str:
        return (
            f"| {self.name} | {self.callers} | {self.images} | {self.seconds:.1f} | {self.throughput:.2f} | "
            f"{self.pct(50):.0f} | {self.pct(95):.0f} | {self.pct(99):.0f} | {self.errors} |"
        )


def test_image(size: int) -> np.ndarray:
    from PIL import Image

    path = ROOT / "assets" / "astronaut.png"
    if path.is_file():
        return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)).copy()
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


# -- engine, in this process ---------------------------------------------------------------
def engine_direct(phase: Phase, engine, config, image, targets, callers: int, seconds: float) -> Phase:
    from faceshield.engine import ProtectRequest

    lock = threading.Lock()
    end = time.monotonic() + seconds

    def caller(k: int) -> None:
        i = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            engine.protect([ProtectRequest(image, targets=targets, seed=k * 100000 + i)], config)
            with lock:
                phase.latencies.append(time.monotonic() - t0)
                phase.images += 1
            i += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds += time.monotonic() - t0
    return phase


def engine_batched(phase: Phase, engine, config, image, targets, batch: int, seconds: float) -> Phase:
    from faceshield.engine import ProtectRequest

    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        engine.protect([ProtectRequest(image, targets=targets, seed=i) for i in range(batch)], config)
        phase.latencies += [time.monotonic() - t] * batch
        phase.images += batch
    phase.seconds += time.monotonic() - t0
    return phase


# -- the service, in a subprocess ----------------------------------------------------------
def start_server(args) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    model_args = (
        (["--models", args.models] if args.models else [])
        + (["--generator", args.generator] if args.generator else [])
        + ([] if needs_saliency(args) else ["--no-saliency"])
    )
    cmd = [
        sys.executable,
        "-m",
        "faceshield.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--metrics-port",
        "-1",
        "--device",
        args.device,
        *model_args,
        "--max-batch",
        str(args.max_batch),
        "--queue-length",
        str(max(64, 4 * args.callers)),
        "--stream-window",
        str(args.callers),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
        "--compile",
        args.compile,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("faceshield listening on port"):
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, int(line.split()[4])


async def service_unary(phase: Phase, target: str, request_args: dict, image, callers: int, seconds: float) -> Phase:
    from faceshield.client import AsyncFaceShieldClient, FaceShieldError

    async with AsyncFaceShieldClient(target, timeout=600) as client:
        await client.wait_until_serving(120)
        await client.protect(image, **request_args)  # connection set up, caches warm
        end = time.monotonic() + seconds

        async def caller(k: int) -> None:
            i = 0
            while time.monotonic() < end:
                t0 = time.monotonic()
                try:
                    await client.protect(image, seed=k * 100000 + i, **request_args)
                    phase.latencies.append(time.monotonic() - t0)
                    phase.images += 1
                except FaceShieldError:
                    phase.errors += 1
                i += 1

        t0 = time.monotonic()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        phase.seconds += time.monotonic() - t0
    return phase


async def service_stream(phase: Phase, target: str, request_args: dict, image, window: int, seconds: float) -> Phase:
    from faceshield.client import AsyncFaceShieldClient
    from faceshield.client._common import protect_request

    sent: dict[str, float] = {}
    async with AsyncFaceShieldClient(target, timeout=600) as client:
        await client.wait_until_serving(120)
        template = protect_request(image, **request_args)  # encode once, as a streaming caller would
        end = time.monotonic() + seconds

        async def items():
            i = 0
            while time.monotonic() < end:
                msg = type(template)()
                msg.CopyFrom(template)
                msg.request_id, msg.seed = str(i), i
                sent[msg.request_id] = time.monotonic()
                yield msg
                i += 1

        t0 = time.monotonic()
        async for answer in client.protect_stream(items(), window=window):
            if answer.ok:
                phase.latencies.append(time.monotonic() - sent[answer.request_id])
                phase.images += 1
            else:
                phase.errors += 1
        phase.seconds += time.monotonic() - t0
    return phase


def needs_saliency(args) -> bool:
    from faceshield.engine.config import METHODS

    return METHODS[args.method].mask != "none"


def machine() -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average {load} at start"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--callers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="per phase, in all")
    p.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="phases take turns this many times (fairer on a machine whose background load drifts)",
    )
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--targets", default="Male", help="comma-separated; 'all' for every attribute")
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="the server's longest wait for batch-mates")
    p.add_argument("--threads", type=int, default=1, help="torch threads in each process (same for both)")
    p.add_argument("--method", default="pgd", help="attack method of every request (default pgd)")
    p.add_argument(
        "--models", default="demo", help="model set (path or name) for both; default: the demo set (its toy StarGAN)"
    )
    p.add_argument(
        "--generator", default=None, help="an official-layout StarGAN checkpoint for both (instead of --models)"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda, for the engine and the server alike")
    p.add_argument("--compile", default="none", help="torch.compile mode of the generator, both sides (default none)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--label", default="2-core CPU dev box", help="machine name for the report")
    args = p.parse_args(argv)

    import torch

    from faceshield.engine import AttackConfig, FaceShieldEngine
    from faceshield.engine.modelsets.defaults import build_default_models
    from faceshield.engine.pipeline import Limits

    torch.set_num_threads(args.threads)
    targets = None if args.targets == "all" else args.targets.split(",")
    image = test_image(args.size)
    config = AttackConfig.for_method(args.method, steps=args.steps)
    # The centre square, as the engine's phases get (ProtectRequest without a box): the server
    # would otherwise run its face detector on every image (and refuse the noise image, where
    # assets/astronaut.png is missing), which the engine phases do not.
    request_args = {"method": args.method, "steps": args.steps, "targets": targets, "detect_faces": False}
    started = dt.datetime.now(dt.UTC)
    where = machine()

    if args.generator:
        from faceshield.cli.common import load_models

        models = load_models(argparse.Namespace(generator=args.generator, attributes=None, models=None))
    elif args.models:
        from faceshield.engine.modelsets import load_model_set

        models = load_model_set(args.models, with_saliency=needs_saliency(args), device=args.device)
    else:
        models = build_default_models(with_saliency=needs_saliency(args))
    engine = FaceShieldEngine(models, device=args.device, limits=Limits(max_batch=args.max_batch), compile=args.compile)
    from faceshield.engine import ProtectRequest

    engine.protect([ProtectRequest(image, targets=targets)], config)  # warm-up
    batch = min(args.callers, args.max_batch)
    direct, batched, unary, stream = phases = [
        Phase("engine, direct (1 image per call)", args.callers),
        Phase(f"engine, batched ({batch} per call)", 1),
        Phase("service, unary ProtectImage", args.callers),
        Phase("service, ProtectStream", args.callers),
    ]
    slice_s = args.seconds / args.rounds
    proc, port = start_server(args)
    try:
        target = f"127.0.0.1:{port}"
        for r in range(args.rounds):
            engine_direct(direct, engine, config, image, targets, args.callers, slice_s)
            engine_batched(batched, engine, config, image, targets, batch, slice_s)
            asyncio.run(service_unary(unary, target, request_args, image, args.callers, slice_s))
            asyncio.run(service_stream(stream, target, request_args, image, args.callers, slice_s))
            print(
                f"round {r + 1}/{args.rounds}: " + ", ".join(f"{ph.throughput:.2f}" for ph in phases) + " images/s",
                flush=True,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()

    best_service = max(unary.throughput, stream.throughput)
    lines = [
        "# Load test: the gRPC service against the engine called directly",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; machine: {args.label} ({where}).",
        f"- Command: `python benchmarks/load_test.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        f"- Work per image: `{args.method}`, {args.steps} steps, targets {args.targets}, {args.size}x{args.size}, "
        f"models {models.name} {models.version} (saliency: {models.saliency_name} on {', '.join(models.providers) or '-'}), "
        f"device {args.device}, compile {args.compile}; torch {torch.__version__}, "
        f"{args.threads} torch thread(s) per process; server max batch {args.max_batch}, "
        f"batch wait {args.batch_wait_ms:g} ms.",
        f"- Each phase runs {args.seconds:.0f} s in all with {args.callers} concurrent callers, in {args.rounds} "
        "turns (direct, batched, unary, stream, direct, ...) so that all four see the same drift in the "
        "machine's background load; latency is per image, from the call to its answer.",
        "",
        "| phase | callers | images | seconds | images/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
        *[ph.row() for ph in phases],
        "",
        f"- Service unary vs engine direct: {unary.throughput / direct.throughput:.2f}x throughput "
        f"({100 * (1 - unary.throughput / direct.throughput):+.1f}% cost).",
        f"- Service stream vs engine direct: {stream.throughput / direct.throughput:.2f}x "
        f"({100 * (1 - stream.throughput / direct.throughput):+.1f}% cost).",
        f"- Best service phase vs the engine's own batched loop: {best_service / batched.throughput:.2f}x "
        f"({100 * (1 - best_service / batched.throughput):+.1f}% cost).",
        "",
        "A negative cost means the service was faster: its micro-batcher gathers concurrent callers into "
        "one engine batch, which single-image calls to the engine cannot do. The engine's batched loop "
        "is the ceiling; the gap to it is what the service costs (decode, encode, transport, waiting "
        "for batch-mates). The machine is shared: its background load moves these figures by tens of "
        "percent from one run to the next; the turns spread that drift over all phases.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines[7:]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
