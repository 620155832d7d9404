"""TRACER per-image time on this machine: ONNX Runtime vs PyTorch, TE-0 and TE-5 at their
official input sizes (320, 512), batch 1 and 8. Writes benchmarks/results/tracer.md.

    python benchmarks/tracer_bench.py                      # the issue's table, a few repeats
    python benchmarks/tracer_bench.py --variants TE-0 --batches 1 --repeats 5 --out /tmp/t.md

Weights are random (fixed seed, batch-norm statistics calibrated so activations are realistic in
scale); speed does not depend on their values. Images are already at the input size, so the time
is the network plus the runner's conversion, not the resize.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import onnxruntime as ort
import torch

from faceshield.engine.models.tracer import build_tracer, export_onnx, get_variant
from faceshield.engine.saliency import TorchSaliency, TracerSaliency

RESULTS = Path(__file__).resolve().parent / "results" / "tracer.md"


def time_runner(runner, batch: int, size: int, repeats: int) -> tuple[float, float]:
    """(best, median) seconds per image over `repeats` timed calls after one warm-up call."""
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    runner(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        runner(x)
        times.append((time.perf_counter() - t) / batch)
    times.sort()
    return times[0], times[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    from faceshield.engine.benchmark import cpu_name

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="TE-0,TE-5")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per row, after one warm-up")
    p.add_argument(
        "--threads", default=f"1,{os.cpu_count()}", help="intra-op thread counts to time, the same for both backends"
    )
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    default_threads = torch.get_num_threads()
    load_before = os.getloadavg()
    rows = []
    for name in args.variants.split(","):
        variant = get_variant(name)
        t = time.perf_counter()
        tracer = build_tracer(variant, seed=0, calibrate=True)
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        onnx_bytes = export_onnx(tracer)
        t_export = time.perf_counter() - t
        for threads in thread_counts:
            torch.set_num_threads(threads)
            runners = {
                "ONNX Runtime": TracerSaliency(onnx_bytes, max_batch=max(batches), threads=threads),
                "PyTorch": TorchSaliency(tracer, max_batch=max(batches)),
            }
            for batch in batches:
                for backend, runner in runners.items():
                    best, median = time_runner(runner, batch, variant.input_size, args.repeats)
                    rows.append(
                        (
                            variant.name,
                            variant.input_size,
                            batch,
                            threads,
                            backend,
                            ", ".join(runner.providers),
                            median,
                            best,
                        )
                    )
                    print(
                        f"{variant.name} {variant.input_size} batch {batch} threads {threads} {backend}: "
                        f"{median * 1e3:.0f} ms/image (best {best * 1e3:.0f})",
                        flush=True,
                    )
        torch.set_num_threads(default_threads)
        print(
            f"{variant.name}: build+calibrate {t_build:.1f} s, export {t_export:.1f} s, "
            f"ONNX {len(onnx_bytes) / 2**20:.0f} MiB",
            flush=True,
        )
        rows.append((variant.name, "setup", t_build, t_export, len(onnx_bytes)))
    load_after = os.getloadavg()

    command = "python benchmarks/tracer_bench.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    lines = [
        "# TRACER saliency: ONNX Runtime vs PyTorch (CPU)",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{command}`",
        f"- Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (shared machine: other jobs ran "
        "alongside, so absolute times are pessimistic and noisy)",
        f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; intra-op threads per row (both backends alike)",
        f"- Weights: random (seed 0, calibrated batch-norm statistics); inputs at the variant's size; "
        f"{args.repeats} timed calls per row after one warm-up; median (best) per image",
        "",
        "| variant | input | batch | threads | backend | providers | ms / image | images / s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row[1] == "setup":
            continue
        name, size, batch, threads, backend, providers, median, best = row
        lines.append(
            f"| {name} | {size} | {batch} | {threads} | {backend} | {providers} | "
            f"{median * 1e3:.0f} ({best * 1e3:.0f}) | {1 / median:.2f} |"
        )
    lines += [
        "",
        "On a shared machine, rows with every core are at the mercy of other processes: an OpenMP",
        "thread that loses its core stalls the whole parallel region (PyTorch suffers most). The",
        "single-thread rows are the stable comparison.",
        "",
        "Set-up cost (once per process):",
        "",
    ]
    for row in rows:
        if row[1] == "setup":
            lines.append(
                f"- {row[0]}: build + calibrate {row[2]:.1f} s, ONNX export {row[3]:.1f} s, "
                f"graph {row[4] / 2**20:.0f} MiB"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
