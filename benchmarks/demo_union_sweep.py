"""Why union-saliency does not disrupt the demo generator: its stages switched off one by one.

Runs docs/method.md §3's union-saliency on held-out synthetic faces, then the same attack without the SSIM
penalty, with a milder blur (sigma 0.5: what sigma 1.0 is at 128 px for this 64 px generator),
without any blur, and the comparison configurations; prints success rate (docs/method.md §5, MSE > 0.05),
mean output MSE and input PSNR per row. A second table compares, inside the face, the size of the
two gradients the objective adds: the disruption term's and the SSIM penalty's. Writes markdown.

    python benchmarks/demo_union_sweep.py --faces 16 --out benchmarks/results/demo-union-sweep.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import numpy as np
import torch

from faceshield.engine import AttackConfig
from faceshield.engine.attack.objective import disruption_loss, ssim_penalty
from faceshield.engine.models.labels import create_labels
from faceshield.engine.modelsets import load_model_set
from faceshield.engine.ops.filters import Blur
from faceshield.engine.pipeline import FaceShieldEngine, ProtectRequest
from faceshield.engine.synthetic import held_out_faces

ROWS = (  # label, method, overrides of SPEC's values
    ("union-saliency (docs/method.md §3)", "union-saliency", {}),
    ("  without the SSIM penalty (gamma 0)", "union-saliency", {"gamma": 0.0}),
    ("  blur sigma 0.5", "union-saliency", {"blur_sigma": 0.5}),
    ("  gamma 0 and blur sigma 0.5", "union-saliency", {"gamma": 0.0, "blur_sigma": 0.5}),
    ("  gamma 0, blur 1x1 (none)", "union-saliency", {"gamma": 0.0, "blur_kernel": 1, "blur_sigma": 1.0}),
    ("saliency-aware (M_sm, blur)", "saliency-aware", {}),
    ("pgd (no mask, no blur)", "pgd", {}),
)


def sweep(engine: FaceShieldEngine, faces) -> list[tuple[str, float, float, float, float]]:
    rows = []
    for label, method, overrides in ROWS:
        config = AttackConfig.for_method(method, **overrides)
        t = time.perf_counter()
        requests = [
            ProtectRequest(f.image, original_attributes=f.attributes.tolist(), seed=k) for k, f in enumerate(faces)
        ]
        outcomes = engine.protect(requests, config)
        mse = np.array([[t.mse for t in o.targets] for o in outcomes])
        psnr = float(np.mean([o.input.psnr for o in outcomes]))
        rows.append((label, float((mse > 0.05).mean()), float(mse.mean()), psnr, time.perf_counter() - t))
        print(f"{label:40s} success {rows[-1][1]:.3f}  mean MSE {rows[-1][2]:.4f}  PSNR {psnr:.2f} dB", flush=True)
    return rows


def gradient_sizes(models, faces, scales=(0.01, 0.03, 0.05)) -> list[tuple[float, float, float]]:
    """Mean |d disruption / dx| and |d gamma*(1 - SSIM) / dx| inside the face, at I + uniform noise
    of each scale confined to the true face mask, blur 11/1.0 as docs/method.md §3 applies it."""
    x = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in faces])
    face = torch.stack([torch.from_numpy(f.mask) for f in faces])[:, None].float().expand_as(x) > 0.5
    original = torch.tensor(np.stack([f.attributes for f in faces]), dtype=torch.float32)
    labels = create_labels(original, models.attributes)
    with torch.no_grad():
        t = labels.shape[1]
        refs = models.generator(
            x[:, None].expand(-1, t, -1, -1, -1).reshape(-1, *x.shape[1:]), labels.reshape(-1, labels.shape[-1])
        ).reshape(len(faces), t, *x.shape[1:])
    blur = Blur("gaussian", 11, 1.0)
    g = torch.Generator().manual_seed(0)
    out = []
    for scale in scales:
        point = (x + (torch.rand(x.shape, generator=g) * 2 - 1) * scale * face).requires_grad_(True)
        (grad_d,) = torch.autograd.grad(disruption_loss(models.generator, point, labels, refs, [blur]).sum(), point)
        (grad_s,) = torch.autograd.grad(ssim_penalty(point, x).sum(), point)
        out.append((scale, float(grad_d[face].abs().mean()), float(grad_s[face].abs().mean())))
        print(f"noise {scale}: |grad disruption| {out[-1][1]:.2e}  |grad SSIM penalty| {out[-1][2]:.2e}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="demo")
    p.add_argument("--faces", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/demo-union-sweep.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = load_model_set(args.models, providers=["CPUExecutionProvider"])
    faces = held_out_faces(0, args.faces, models.resolution)
    rows = sweep(FaceShieldEngine(models), faces)
    grads = gradient_sizes(models, faces[:4])
    lines = [
        f"# Union-saliency on the `{models.name}` set, stage by stage",
        "",
        f"{datetime.date.today().isoformat()}, {platform.processor() or platform.machine()} CPU, torch {torch.__version__}; "
        f"`python benchmarks/demo_union_sweep.py --faces {args.faces}`; {args.faces} held-out synthetic faces "
        f"(seed 0) x {len(models.attributes)} targets, {models.resolution} px generator, epsilon 0.05, 10 steps.",
        "",
        "| configuration | success (MSE > 0.05) | mean output MSE | input PSNR (dB) |",
        "|---|---|---|---|",
        *[f"| {label.strip()} | {s:.1%} | {m:.4f} | {q:.2f} |" for label, s, m, q, _ in rows],
        "",
        "Gradient sizes inside the face (mean absolute value per pixel, 4 faces, every target, blur 11/1.0):",
        "",
        "| uniform noise in the face | disruption term | SSIM penalty (gamma 1) | ratio |",
        "|---|---|---|---|",
        *[f"| {s} | {d:.2e} | {q:.2e} | {q / d:.1f} |" for s, d, q in grads],
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
