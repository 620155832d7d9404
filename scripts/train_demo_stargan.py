#!/usr/bin/env python3
"""Train the demo StarGAN generator on synthetic faces (faceshield.engine.synthetic).

The networks are the official StarGAN ones (Choi et al., CVPR 2018; `Generator` from the engine,
the PatchGAN `Discriminator` below with the official layout), at a small width. The losses are
the official ones, with the official weights:

    D: -D_src(x) + D_src(G(x, c')) + lambda_cls * BCE(D_cls(x), c) + lambda_gp * GP
    G: -D_src(G(x, c')) + lambda_cls * BCE(D_cls(G(x, c')), c') + lambda_rec * |x - G(G(x, c'), c)|_1

plus one term the official training cannot have, because CelebA has no counterfactuals: the
synthetic renderer draws the same face under the target attributes, y', and the generator is
also pulled towards it, lambda_pair * |G(x, c') - y'|_1. That term is what makes a useful
generator in minutes instead of a day (`pair_decay_to` < 1 lets it fade over the last part of
training, leaving the official losses in charge). Targets are half single-attribute edits (what the
protection defends against, docs/method.md §2 `create_labels`) and half random attribute vectors
(StarGAN's shuffled labels).

Run alone (writes a generator state dict) or through scripts/build_demo_models.py:

    python scripts/train_demo_stargan.py --device cuda --seconds 150 --out G.pt
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _training_env  # noqa: E402

_training_env.prepare()  # the engine from this checkout; torch and numpy are all training needs

from faceshield.engine.errors import ModelLoadError  # noqa: E402
from faceshield.engine.models.stargan import Generator, check_state_dict, load_state_dict_file  # noqa: E402
from faceshield.engine.models.torchscript import load_generator_artifact  # noqa: E402
from faceshield.engine.synthetic import FacePool, render_pool  # noqa: E402

log = logging.getLogger("train_demo_stargan")


class Discriminator(nn.Module):
    """The official PatchGAN critic: conv4/2 + LeakyReLU(0.01) x repeat_num, then a 3x3 source
    head (N, 1, h, w) and a classification head (N, c_dim) whose kernel covers the last map."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            dim *= 2
        kernel = image_size // 2**repeat_num
        if kernel < 1:
            raise ValueError(f"image_size {image_size} is too small for repeat_num {repeat_num}")
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=kernel, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


@dataclass(frozen=True)
class StarGANSettings:
    resolution: int = 64
    conv_dim: int = 16
    repeat_num: int = 6
    d_conv_dim: int = 32
    d_repeat_num: int = 5
    identities: int = 2000  # training identities, each rendered under all 12 attribute vectors
    batch: int = 32
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1  # the official 5 spends most steps on D; the paired term makes 1 enough
    lambda_adv: float = 1.0
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    lambda_pair: float = 10.0
    iterations: int = 20000  # upper bound; --seconds usually ends training first
    decay_start: float = 0.5  # linear learning-rate decay to zero over the last half
    pair_decay_to: float = 1.0  # lambda_pair falls linearly to this fraction over the same half


def _variant_parts(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Variant index (all_attribute_vectors order: hair * 4 + male * 2 + young) -> parts."""
    return v // 4, (v // 2) % 2, v % 2


def sample_targets(src: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half single-attribute edits of `src` (create_labels' rule), half uniform variants."""
    n = src.shape[0]
    hair, male, young = _variant_parts(src)
    which = torch.randint(5, (n,), generator=generator, device=src.device)
    hair = torch.where(which < 3, which, hair)
    male = torch.where(which == 3, 1 - male, male)
    young = torch.where(which == 4, 1 - young, young)
    edit = hair * 4 + male * 2 + young
    uniform = torch.randint(12, (n,), generator=generator, device=src.device)
    pick = torch.rand(n, generator=generator, device=src.device) < 0.5
    return torch.where(pick, edit, uniform)


def gradient_penalty(d: Discriminator, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP: (||grad_x D_src(x_hat)||_2 - 1)^2 on random interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=gen, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out, _ = d(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def _cls_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The official classification loss: BCE summed over attributes, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]


def initial_weights(source: str | Path) -> dict[str, torch.Tensor]:
    """Generator weights to start from: a model set directory, its TorchScript `generator.pt`,
    or a state dict saved by this script. The generator is fully convolutional, so weights
    trained at one resolution are a warm start at another."""
    source = Path(source)
    if source.is_dir():
        source = source / "generator.pt"
    try:
        module, _ = load_generator_artifact(source)
        return {k: v.detach().clone() for k, v in module.state_dict().items()}
    except ModelLoadError:
        return load_state_dict_file(source)


def train_stargan(
    settings: StarGANSettings,
    device: str,
    seed: int,
    seconds: float,
    workers: int | None = None,
    log_every: int = 100,
    pool: FacePool | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[Generator, dict]:
    """Train G (and D) for at most `seconds` of wall time or `settings.iterations` steps,
    from `init` (generator weights, see `initial_weights`) when given, else from scratch.
    Returns G (CPU, eval mode) and a record of the run."""
    s = settings
    dev = torch.device(device)
    torch.manual_seed(seed)
    torch.set_flush_denormal(True)  # CPU: subnormal values can slow training tenfold; no effect on GPU
    np.random.seed(seed % 2**32)
    t0 = time.perf_counter()
    if pool is None:
        pool = render_pool(seed, "train", s.identities, s.resolution, workers=workers)
    if pool.images.shape[2] != s.resolution:
        raise ValueError(f"the face pool is {pool.images.shape[2]} px, settings say {s.resolution}")
    images = torch.from_numpy(pool.images).permute(0, 1, 4, 2, 3).contiguous().to(dev)  # (N, 12, 3, R, R) uint8
    vectors = torch.from_numpy(pool.vectors).to(dev)
    render_s = time.perf_counter() - t0
    log.info("%d x 12 training faces ready in %.1f s", len(pool), render_s)

    g = Generator(s.conv_dim, 5, s.repeat_num)
    if init is not None:
        check_state_dict(g, init, "initial generator weights")  # names the keys that do not fit
        g.load_state_dict(init, strict=True)
    g = g.to(dev).train()
    d = Discriminator(s.resolution, s.d_conv_dim, 5, s.d_repeat_num).to(dev).train()
    g_opt = torch.optim.Adam(g.parameters(), s.g_lr, betas=(s.beta1, s.beta2))
    d_opt = torch.optim.Adam(d.parameters(), s.d_lr, betas=(s.beta1, s.beta2))
    gen = torch.Generator(device=dev).manual_seed(seed)

    def batch() -> tuple[torch.Tensor, ...]:
        idx = torch.randint(images.shape[0], (s.batch,), generator=gen, device=dev)
        src = torch.randint(12, (s.batch,), generator=gen, device=dev)
        tgt = sample_targets(src, gen)
        x = images[idx, src].float().div_(127.5).sub_(1)
        y = images[idx, tgt].float().div_(127.5).sub_(1)
        flip = torch.rand(s.batch, generator=gen, device=dev) < 0.5  # mirror pairs together
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
        return x, vectors[src], y, vectors[tgt]

    start = time.perf_counter()
    it, stats = 0, {}
    while it < s.iterations:
        elapsed = time.perf_counter() - start
        progress = max(it / s.iterations, elapsed / seconds)
        if progress >= 1:
            break
        late = max(0.0, (progress - s.decay_start) / (1 - s.decay_start))  # 0 .. 1 over the last part
        scale = 1.0 - late
        lambda_pair = s.lambda_pair * (1 - (1 - s.pair_decay_to) * late)
        for opt, lr in ((g_opt, s.g_lr), (d_opt, s.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale
        x, c_org, y, c_trg = batch()

        # Discriminator.
        out_src, out_cls = d(x)
        fake = g(x, c_trg).detach()
        fake_src, _ = d(fake)
        d_adv = -out_src.mean() + fake_src.mean()
        d_cls = _cls_loss(out_cls, c_org)
        d_gp = gradient_penalty(d, x, fake, gen)
        d_loss = d_adv + s.lambda_cls * d_cls + s.lambda_gp * d_gp
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()

        # Generator.
        if it % s.n_critic == 0:
            fake = g(x, c_trg)
            fake_src, fake_cls = d(fake)
            g_adv = -fake_src.mean()
            g_cls = _cls_loss(fake_cls, c_trg)
            g_rec = (x - g(fake, c_org)).abs().mean()
            g_pair = (fake - y).abs().mean()
            g_loss = s.lambda_adv * g_adv + s.lambda_cls * g_cls + s.lambda_rec * g_rec + lambda_pair * g_pair
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
        it += 1
        if it % log_every == 0 or it == 1:
            stats = {
                "d_adv": d_adv.item(),
                "d_cls": d_cls.item(),
                "d_gp": d_gp.item(),
                "g_adv": g_adv.item(),
                "g_cls": g_cls.item(),
                "g_rec": g_rec.item(),
                "g_pair": g_pair.item(),
            }
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"StarGAN training diverged at iteration {it}: {stats}")
            log.info(
                "stargan it %d  %.0f s  lr x%.2f  %s",
                it,
                time.perf_counter() - start,
                scale,
                "  ".join(f"{k} {v:.4f}" for k, v in stats.items()),
            )
    train_s = time.perf_counter() - start
    log.info("stargan: %d iterations in %.1f s (%.1f it/s)", it, train_s, it / max(train_s, 1e-9))
    record = {
        "settings": asdict(s),
        "seed": seed,
        "device": str(dev),
        "iterations": it,
        "train_seconds": round(train_s, 1),
        "render_seconds": round(render_s, 1),
        "final_losses": stats,
        "warm_start": init is not None,
        "torch": torch.__version__,
    }
    return g.cpu().eval().requires_grad_(False), record


def settings_from_args(args: argparse.Namespace) -> StarGANSettings:
    return _training_env.settings_from_args(args, StarGANSettings)


def add_arguments(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """One option per field of `StarGANSettings` (default: the dataclass default)."""
    _training_env.add_settings_arguments(p, StarGANSettings, prefix)


def main(argv: list[str] | None = None) -> int:
    p = _training_env.training_parser(__doc__.split("\n\n")[0], "where to write the generator state dict (.pt)")
    p.add_argument(
        "--init", metavar="PATH", help="start from these generator weights (model set, generator.pt or state dict)"
    )
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    init = initial_weights(args.init) if args.init else None
    g, record = train_stargan(
        settings_from_args(args), args.device, args.seed, args.seconds, args.workers, args.log_every, init=init
    )
    out = _training_env.save_atomically(g.state_dict(), args.out)
    log.info("wrote %s (%s)", out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
