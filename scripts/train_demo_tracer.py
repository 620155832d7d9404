#!/usr/bin/env python3
"""Train the demo TRACER (TE-0, the smallest variant) on synthetic faces and their exact masks.

The network is the engine's TRACER (official architecture and keys), trained from scratch (no
ImageNet weights can be downloaded here) at the input size the demo runs it at. Inputs are the
synthetic faces resized to that size exactly as the saliency runner resizes them; targets are the
renderer's foreground coverage. Loss on the final map and each deep-supervision map: BCE plus a
soft IoU; on the edge map: BCE against the mask's morphological edge. At the end, batch-norm
statistics are re-estimated over the training data with the final weights, so that inference
(running statistics) sees what training (batch statistics) saw.

    python scripts/train_demo_tracer.py --device cuda --seconds 150 --out tracer.pt
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _training_env  # noqa: E402

_training_env.prepare()  # the engine from this checkout; torch and numpy are all training needs

from faceshield.engine.models.stargan import load_state_dict_file  # noqa: E402
from faceshield.engine.models.tracer import TRACER, half_state_dict, load_tracer  # noqa: E402
from faceshield.engine.saliency import resize  # noqa: E402
from faceshield.engine.synthetic import FacePool, render_pool  # noqa: E402

log = logging.getLogger("train_demo_tracer")


@dataclass(frozen=True)
class TracerSettings:
    variant: str = "TE-0"
    input_size: int = 128  # the demo generator works at 64; 2x is ample for its masks
    resolution: int = 64  # synthetic face size (the generator's resolution)
    identities: int = 2000
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05  # share of the budget with a linear warm-up
    edge_weight: float = 1.0
    ds_weight: float = 0.5  # each deep-supervision map
    iterations: int = 20000  # upper bound; --seconds usually ends training first
    amp: bool = False  # bfloat16 autocast on CUDA: off, it gives non-finite gradients in TE-0
    bn_batches: int = 50  # batches to re-estimate batch-norm statistics


def _structure_loss(p: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """BCE + (1 - soft IoU) on probabilities (the model returns sigmoids)."""
    p = p.float().clamp(1e-6, 1 - 1e-6)
    bce = F.binary_cross_entropy(p, gt)
    inter = (p * gt).flatten(1).sum(1)
    union = (p + gt - p * gt).flatten(1).sum(1)
    return bce + (1 - (inter + 1) / (union + 1)).mean()


def _edges(mask: torch.Tensor) -> torch.Tensor:
    """Morphological gradient (3x3 dilation minus erosion) of a soft mask."""
    return (F.max_pool2d(mask, 3, 1, 1) + F.max_pool2d(-mask, 3, 1, 1)).clamp(0, 1)


def _reestimate_batchnorm(model: nn.Module, batches, n: int) -> None:
    """Cumulative running statistics over `n` batches with the final weights."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(n):
            model(batches()[0])
    for m, mom in zip(norms, saved, strict=True):
        m.momentum = mom


def train_tracer(
    settings: TracerSettings,
    device: str,
    seed: int,
    seconds: float,
    workers: int | None = None,
    log_every: int = 100,
    pool: FacePool | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[TRACER, dict]:
    """Train for at most `seconds` of wall time or `settings.iterations` steps, from `init` (a
    state dict of this variant, e.g. an earlier run's checkpoint) when given, else from scratch.
    The schedule (warm-up, cosine decay) restarts either way. Returns the model (CPU, eval mode)
    and a record of the run."""
    s = settings
    dev = torch.device(device)
    torch.manual_seed(seed)
    torch.set_flush_denormal(True)  # CPU: subnormal activations slow TE-0 down tenfold; no effect on GPU
    t0 = time.perf_counter()
    if pool is None:
        pool = render_pool(seed, "train", s.identities, s.resolution, workers=workers)
    if pool.images.shape[2] != s.resolution:
        raise ValueError(f"the face pool is {pool.images.shape[2]} px, settings say {s.resolution}")
    images = torch.from_numpy(pool.images).permute(0, 1, 4, 2, 3).contiguous().to(dev)  # (N, 12, 3, R, R)
    masks = torch.from_numpy(pool.masks).to(dev)  # (N, 12, R, R) uint8
    render_s = time.perf_counter() - t0
    log.info("%d x 12 training faces ready in %.1f s", len(pool), render_s)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TRACER(s.variant, s.input_size)
    if init is not None:  # strict, naming the keys of another variant; float16 checkpoints load as they are
        model = load_tracer(init, s.variant, s.input_size)
    model = model.to(dev).train().requires_grad_(True)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    gen = torch.Generator(device=dev).manual_seed(seed)
    size = (s.input_size, s.input_size)
    use_amp = s.amp and dev.type == "cuda"

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(images.shape[0], (s.batch,), generator=gen, device=dev)
        var = torch.randint(12, (s.batch,), generator=gen, device=dev)
        x = images[idx, var].float().div_(255)
        m = masks[idx, var][:, None].float().div_(255)
        flip = torch.rand(s.batch, generator=gen, device=dev) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        m = torch.where(flip[:, None, None, None], m.flip(-1), m)
        x = resize(x, size)  # as the saliency runner feeds the model
        m = resize(m, size)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x, m

    # ImageNet normalization lives in the exported graph; train on normalized inputs too.
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

    def normalized_batches():
        x, m = batches()
        return (x - mean) / std, m

    start = time.perf_counter()
    it, last = 0, {}
    while it < s.iterations:
        elapsed = time.perf_counter() - start
        progress = max(it / s.iterations, elapsed / seconds)
        if progress >= 1:
            break
        # Linear warm-up, then cosine decay to zero over the rest of the budget.
        if progress < s.warmup:
            scale = max(progress / s.warmup, 0.02)
        else:
            scale = 0.5 * (1 + math.cos(math.pi * (progress - s.warmup) / (1 - s.warmup)))
        for group in opt.param_groups:
            group["lr"] = s.lr * scale
        x, m = normalized_batches()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            final, edge, deep = model(x)
        loss_final = _structure_loss(final, m)
        loss_ds = sum(_structure_loss(d, m) for d in deep)
        loss_edge = F.binary_cross_entropy(edge.float().clamp(1e-6, 1 - 1e-6), _edges(m))
        loss = loss_final + s.ds_weight * loss_ds + s.edge_weight * loss_edge
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        it += 1
        if it % log_every == 0 or it == 1:
            with torch.no_grad():
                mae = (final.float() - m).abs().mean().item()
            last = {"loss": loss.item(), "final": loss_final.item(), "edge": loss_edge.item(), "train_mae": mae}
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(f"TRACER training diverged at iteration {it}: {last}")
            log.info(
                "tracer it %d  %.0f s  lr x%.2f  %s",
                it,
                time.perf_counter() - start,
                scale,
                "  ".join(f"{k} {v:.4f}" for k, v in last.items()),
            )
    train_s = time.perf_counter() - start
    log.info("tracer: %d iterations in %.1f s (%.2f it/s)", it, train_s, it / max(train_s, 1e-9))
    _reestimate_batchnorm(model, normalized_batches, s.bn_batches)
    model = model.to(memory_format=torch.contiguous_format).cpu().eval().requires_grad_(False)
    record = {
        "settings": asdict(s),
        "seed": seed,
        "device": str(dev),
        "iterations": it,
        "train_seconds": round(train_s, 1),
        "render_seconds": round(render_s, 1),
        "final_losses": last,
        "torch": torch.__version__,
        "warm_start": init is not None,
    }
    return model, record


def settings_from_args(args: argparse.Namespace) -> TracerSettings:
    return _training_env.settings_from_args(args, TracerSettings)


def add_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """One option per field of `TracerSettings` (default: the dataclass default)."""
    _training_env.add_settings_arguments(p, TracerSettings, prefix)


def main(argv: list[str] | None = None) -> int:
    p = _training_env.training_parser(__doc__.split("\n\n")[0], "where to write the TRACER state dict (.pt, float16)")
    p.add_argument("--init", metavar="PATH", help="start from this TRACER state dict (e.g. an earlier run's .pt)")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    init = load_state_dict_file(args.init) if args.init else None
    model, record = train_tracer(
        settings_from_args(args), args.device, args.seed, args.seconds, args.workers, args.log_every, init=init
    )
    out = _training_env.save_atomically(half_state_dict(model), args.out)
    log.info("wrote %s (%s)", out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
