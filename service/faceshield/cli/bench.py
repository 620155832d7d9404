"""`faceshield bench`: the reference loop and the engine side by side, swept over batch size and
precision; writes a Markdown table (with device, versions, command and date) and prints it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path

from .common import resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure protection throughput", description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--width",
        choices=["full", "small"],
        default="small",
        help="full: StarGAN's published width (conv_dim 64, 6 blocks); small: the embedded default's",
    )
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--methods", default="pgd,union-saliency")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--precisions", default="fp32")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=20.0, help="seconds per measurement at most (after warm-up)")
    p.add_argument("--reference-images", type=int, default=2, help="images for the reference loop (0: skip)")
    p.add_argument(
        "--saliency",
        choices=["tracer", "given"],
        default="given",
        help="tracer: run the saliency model per image (needs faceshield.engine.saliency); given: caller masks",
    )
    p.add_argument("--compile", action="store_true", help="also time the generator under torch.compile (bf16)")
    p.add_argument(
        "--out", default=None, help="Markdown file to write (default: benchmarks/results/engine-<device>.md)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at start-up: `faceshield --help` must not pay for PyTorch.
    import torch

    from faceshield.engine.attack.protect import Protector
    from faceshield.engine.benchmark import (
        bench_engine,
        bench_reference,
        benchmark_generator,
        benchmark_saliency,
        environment,
        markdown_table,
    )
    from faceshield.engine.defaults import PRECISIONS
    from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES

    device = torch.device(resolve_device(args.device))
    gen = benchmark_generator(args.width).to(device)
    attrs = list(CELEBA_DEFAULT_ATTRIBUTES)
    saliency = benchmark_saliency(device) if args.saliency == "tracer" else None
    protector = Protector.for_generator(gen, attrs, args.resolution, saliency=saliency, device=device)
    precisions = [p for p in args.precisions.split(",") if p]
    for p in precisions:
        if p not in PRECISIONS:
            print(f"faceshield bench: unknown precision {p!r} (choose from {', '.join(PRECISIONS)})", file=sys.stderr)
            return 2
    reference = None
    if args.reference_images > 0:
        reference = bench_reference(
            gen, args.resolution, len(attrs), device, args.steps, args.reference_images, args.budget
        )
        print(markdown_table([reference]), flush=True)
    rows = []
    for method in args.methods.split(","):
        for precision in precisions:
            for batch in (int(b) for b in args.batches.split(",")):
                try:
                    row = bench_engine(
                        protector,
                        method,
                        batch,
                        precision,
                        args.steps,
                        args.repeats,
                        args.budget,
                        saliency_given=saliency is None,
                    )
                except torch.OutOfMemoryError:
                    print(
                        f"out of memory at batch {batch} ({method}, {precision}); stopping this sweep", file=sys.stderr
                    )
                    torch.cuda.empty_cache()
                    break
                rows.append(row)
                print(f"{method:>16} {precision:>5} batch {batch:>4}: {row.images_per_s:9.2f} images/s", flush=True)
    if args.compile and device.type == "cuda":
        protector.victims[0].generator = torch.compile(gen)  # the only victim (for_generator)
        for method in args.methods.split(","):
            batch = max(int(b) for b in args.batches.split(","))
            row = bench_engine(
                protector, method, batch, "bf16", args.steps, args.repeats, args.budget, saliency is None
            )
            row.what = "engine, torch.compile"
            rows.append(row)
            print(f"{method:>16} compiled bf16 batch {batch}: {row.images_per_s:.2f} images/s", flush=True)
    env = environment(device)
    header = [
        f"# Engine throughput on {env.get('gpu', 'CPU')} ({device.type})",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`",
        f"- environment: `{json.dumps(env)}`",
        f"- generator: StarGAN, {args.width} width, {args.resolution}x{args.resolution}, random weights; one target; {args.steps} steps;"
        f" saliency: {'TRACER per image' if saliency is not None else 'caller mask'}",
        "",
        markdown_table(([reference] if reference else []) + rows, reference),
        "",
    ]
    text = "\n".join(header)
    out = Path(args.out or f"benchmarks/results/engine-{device.type}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0
