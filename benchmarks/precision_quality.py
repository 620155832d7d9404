"""Does reduced precision change the protection? Union-saliency on the same held-out synthetic
faces at fp32 and at the engine's fast precision (bf16 autocast on CUDA): success rate (docs/method.md §5)
and mean input PSNR, side by side. The issue's bar: within 1 point and 0.1 dB.

    python benchmarks/precision_quality.py --device cuda --models PATH --faces 64 --out results.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import torch

from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet, ProtectRequest, success_rate
from faceshield.engine.benchmark import benchmark_generator
from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES
from faceshield.engine.pipeline import Limits
from faceshield.engine.synthetic import held_out_faces


def full_width_models(device: str) -> ModelSet:
    from faceshield.engine.saliency import build_default_torch_saliency

    g = benchmark_generator("full")
    sal = build_default_torch_saliency(device=device)
    return ModelSet(
        "full-width-random",
        "seed-0",
        g,
        list(CELEBA_DEFAULT_ATTRIBUTES),
        128,
        saliency=sal,
        saliency_name=sal.name,
        trained=False,
    )


def run(
    models: ModelSet, faces, device: str, precision: str, batch: int, method: str = "union-saliency"
) -> tuple[float, float, float]:
    engine = FaceShieldEngine(models, device=device, limits=Limits(max_batch=batch), precision=precision)
    config = AttackConfig.for_method(method)
    rows, psnr = [], []
    t0 = time.perf_counter()
    for s in range(0, len(faces), batch):
        chunk = faces[s : s + batch]
        reqs = [
            ProtectRequest(f.image, original_attributes=f.attributes.tolist(), seed=s + k) for k, f in enumerate(chunk)
        ]
        for out in engine.protect(reqs, config):
            rows.append(out.targets)
            psnr.append(out.input.psnr)
    return success_rate(rows), float(np.mean(psnr)), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", help="model set path or name; default: full-width random StarGAN at 128")
    p.add_argument("--faces", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fast", default="bf16", help="the precision compared with fp32")
    p.add_argument("--method", default="union-saliency", help="attack configuration (default union-saliency)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.models:
        from faceshield.engine.modelsets import load_model_set

        models = load_model_set(args.models)
    else:
        models = full_width_models(args.device)
    faces = held_out_faces(seed=1, count=args.faces, resolution=models.resolution)
    lines = [
        f"## Precision and protection quality: {models.name}, {args.method} ({models.resolution}x{models.resolution}, {args.device})",
        "",
        f"- date {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; `python benchmarks/precision_quality.py {' '.join(sys.argv[1:])}`",
        f"- {args.method}, paper defaults, all {len(models.attributes)} targets jointly, {len(faces)} held-out synthetic faces",
        "",
        "| precision | success rate | mean input PSNR (dB) | seconds |",
        "|---|---:|---:|---:|",
    ]
    results = {}
    for precision in ("fp32", args.fast):
        sr, ps, sec = run(models, faces, args.device, precision, args.batch, args.method)
        results[precision] = (sr, ps)
        lines.append(f"| {precision} | {sr:.4f} | {ps:.3f} | {sec:.1f} |")
        print(lines[-1], flush=True)
    d_sr = 100 * (results[args.fast][0] - results["fp32"][0])
    d_ps = results[args.fast][1] - results["fp32"][1]
    lines += [
        "",
        f"- {args.fast} vs fp32: success {d_sr:+.2f} points, PSNR {d_ps:+.3f} dB "
        f"({'within' if abs(d_sr) <= 1 and abs(d_ps) <= 0.1 else 'OUTSIDE'} the 1 point / 0.1 dB bar)",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
