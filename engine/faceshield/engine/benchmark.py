"""Throughput of the engine against Ruiz et al.'s reference loop, measured in one process.

The reference is `LinfPGDAttack.perturb` written from docs/method.md §3 (random start, sign step,
projection, clamp), run one image at a time as the reference evaluation runs it, fp32. The
engine runs whole batches in the precision asked for. Figures are images per second (one image
protected against one target, `steps` iterations, masks and noise generator included).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch

from . import onnx_runtime
from .attack.protect import Protector
from .config import AttackConfig
from .models.labels import create_labels

log = logging.getLogger(__name__)


@dataclass
class BenchRow:
    what: str
    method: str
    precision: str
    batch: int
    images_per_s: float
    seconds_per_batch: float
    repeats: int

    def as_dict(self) -> dict:
        return asdict(self)


def benchmark_generator(width: str = "small") -> torch.nn.Module:
    """The generator every benchmark times: StarGAN at its published width ("full": conv_dim 64,
    6 blocks) or the embedded default's ("small"), seeded random weights (speed does not depend
    on training)."""
    from .models.labels import CELEBA_DEFAULT_ATTRIBUTES
    from .models.stargan import Generator
    from .modelsets.defaults import EMBEDDED_CONV_DIM, EMBEDDED_REPEAT_NUM

    conv_dim, repeat = (64, 6) if width == "full" else (EMBEDDED_CONV_DIM, EMBEDDED_REPEAT_NUM)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        g = Generator(conv_dim=conv_dim, c_dim=len(CELEBA_DEFAULT_ATTRIBUTES), repeat_num=repeat)
    return g.eval().requires_grad_(False)


def benchmark_saliency(device: torch.device):
    """The embedded TRACER where it runs best there: PyTorch on a GPU, ONNX Runtime otherwise."""
    from . import saliency

    if device.type == "cuda":
        return saliency.build_default_torch_saliency(device=device)
    return saliency.build_default_saliency()


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows (for reports)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
    }
    env["cpu"] = cpu_name()
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    try:
        env["onnxruntime"] = onnx_runtime.load().__version__
    except ImportError:
        pass
    return env


@contextlib.contextmanager
def precision_mode(name: str, device: torch.device) -> Iterator[torch.dtype | None]:
    """fp32 (TF32 off), tf32 (TF32 matmul/conv on CUDA), bf16 (autocast). Yields the autocast dtype."""
    if device.type != "cuda":
        yield torch.bfloat16 if name == "bf16" else None
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = name in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield torch.bfloat16 if name == "bf16" else None
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device, repeats: int, budget_s: float) -> list[float]:
    fn()  # warm-up (allocator, cudnn autotune, lazy init)
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def reference_perturb(
    generator,
    x_nat: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    epsilon: float = 0.05,
    k: int = 10,
    a: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """Ruiz et al.'s PGD on one image, fp32, the whole loss backpropagated as theirs is."""
    gen = torch.Generator().manual_seed(seed)
    x = x_nat + ((torch.rand(x_nat.shape, generator=gen) * 2 - 1) * epsilon).to(x_nat.device)
    for _ in range(k):
        x.requires_grad_(True)
        loss = torch.nn.functional.mse_loss(generator(x, c), y)
        loss.backward()
        assert x.grad is not None  # backward() has just filled it
        with torch.no_grad():
            eta = (x + a * x.grad.sign() - x_nat).clamp(-epsilon, epsilon)
            x = (x_nat + eta).clamp(-1, 1)
    return x.detach()


def bench_reference(
    generator, resolution: int, c_dim: int, device: torch.device, steps: int, images: int, budget_s: float
) -> BenchRow:
    """Reference loop over `images` images, one at a time (its own parameters need no grad:
    the reference computes them, which costs it the weight gradients too)."""
    for p in generator.parameters():
        p.requires_grad_(True)
    x = torch.rand(images, 3, resolution, resolution, device=device) * 2 - 1
    c = torch.zeros(1, c_dim, device=device)
    c[0, 0] = 1
    with torch.no_grad():
        ys = [generator(x[i : i + 1], c) for i in range(images)]

    def run():
        for i in range(images):
            generator.zero_grad(set_to_none=True)
            reference_perturb(generator, x[i : i + 1], ys[i], c, k=steps)

    times = _timed(run, device, repeats=3, budget_s=budget_s)
    for p in generator.parameters():
        p.requires_grad_(False)
        p.grad = None
    sec = statistics.median(times)
    return BenchRow(
        "reference (Ruiz perturb, 1 image at a time)", "pgd", "fp32", 1, images / sec, sec / images, len(times)
    )


def bench_engine(
    protector: Protector,
    method: str,
    batch: int,
    precision: str,
    steps: int,
    repeats: int,
    budget_s: float,
    saliency_given: bool,
) -> BenchRow:
    device = protector.device
    r = protector.victims[0].resolution
    attrs = protector.victims[0].attributes
    x = torch.rand(batch, 3, r, r, device=device) * 2 - 1
    labels = create_labels(torch.zeros(batch, len(attrs)), attrs, [attrs[0]])
    masks = [torch.ones(r, r)] * batch if saliency_given else None
    cfg = AttackConfig.for_method(method, steps=steps)
    with precision_mode(precision, device) as dtype:
        protector.autocast_dtype = dtype
        try:
            times = _timed(lambda: protector.protect(x, labels, cfg, saliency_masks=masks), device, repeats, budget_s)
        finally:
            protector.autocast_dtype = None
    sec = statistics.median(times)
    return BenchRow("engine", method, precision, batch, batch / sec, sec, len(times))


def markdown_table(rows: list[BenchRow], reference: BenchRow | None = None) -> str:
    lines = [
        "| what | method | precision | batch | images/s | s per batch | x reference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = f"{row.images_per_s / reference.images_per_s:.1f}" if reference else "-"
        lines.append(
            f"| {row.what} | {row.method} | {row.precision} | {row.batch} | {row.images_per_s:.2f} | {row.seconds_per_batch:.3f} | {ratio} |"
        )
    return "\n".join(lines)
