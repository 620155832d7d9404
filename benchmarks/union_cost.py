"""Where union-saliency's time goes, next to `pgd`, in one engine: the default configuration,
then with its stages switched off one at a time (noise generator, SSIM penalty, blur), with the
engine's own per-stage timings. Same generator and saliency as `faceshield bench` (the embedded
default's width, 128x128, random weights, TRACER per image); rounds interleave the rows so that
drift in the machine's load reaches all of them. Writes markdown.

    python benchmarks/union_cost.py --batch 8 --out benchmarks/results/union-cost-cpu.md
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path

import torch

from faceshield.engine import AttackConfig, create_labels
from faceshield.engine.attack.protect import Protector
from faceshield.engine.benchmark import benchmark_generator, benchmark_saliency, environment
from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES

ROWS = (  # label, method, overrides
    ("pgd", "pgd", {}),
    ("union-saliency (docs/method.md §3)", "union-saliency", {}),
    ("  no noise generator (K_ng 0)", "union-saliency", {"noise_steps": 0}),
    ("  no SSIM penalty (gamma 0)", "union-saliency", {"gamma": 0.0}),
    ("  no blur (kernel 1)", "union-saliency", {"blur_kernel": 1}),
    ("  none of the three", "union-saliency", {"noise_steps": 0, "gamma": 0.0, "blur_kernel": 1}),
)
STAGES = ("references", "masks", "start", "steps", "outputs")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds; the first is a warm-up")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/union-cost-cpu.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    attrs = list(CELEBA_DEFAULT_ATTRIBUTES)
    protector = Protector.for_generator(
        benchmark_generator("small"), attrs, 128, saliency=benchmark_saliency(torch.device("cpu"))
    )
    x = torch.rand(args.batch, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = create_labels(torch.zeros(args.batch, len(attrs)), attrs, [attrs[0]])
    runs: dict[str, list[tuple[float, dict]]] = {}
    for _ in range(args.rounds):
        for label, method, overrides in ROWS:
            config = AttackConfig.for_method(method, steps=10, **overrides)
            t = time.perf_counter()
            result = protector.protect(x, labels, config)
            runs.setdefault(label, []).append((time.perf_counter() - t, result.timings))
    pgd = statistics.median(t for t, _ in runs["pgd"][1:])
    lines = [
        f"# Union-saliency's cost by stage (CPU, batch {args.batch})",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `python benchmarks/union_cost.py --batch {args.batch} --rounds {args.rounds}`",
        f"- environment: `{environment(torch.device('cpu'))}`",
        "- generator: StarGAN, the embedded default's width, 128x128, random weights; one target; 10 steps; "
        "TRACER per image; medians of the rounds after the first, ms per batch",
        "",
        "| configuration | total | x pgd | " + " | ".join(STAGES) + " |",
        "|---|---:|---:|" + "---:|" * len(STAGES),
    ]
    for label, _, _ in ROWS:
        kept = runs[label][1:]
        total = statistics.median(t for t, _ in kept)
        stages = [statistics.median(tm.get(s, 0.0) for _, tm in kept) * 1000 for s in STAGES]
        lines.append(
            f"| {label.strip()} | {total * 1000:.0f} | {total / pgd:.2f} | "
            + " | ".join(f"{v:.0f}" for v in stages)
            + " |"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
