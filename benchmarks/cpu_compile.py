"""torch.compile on a CPU: is it worth it for the default victims' attack step?

    python benchmarks/cpu_compile.py      # writes benchmarks/results/cpu-compile.md; idle machine

For each default victim, forward + input gradient under bf16 autocast (the engine's CPU default
where the CPU has native bf16), as the identity method's step takes it (vintage one image at
128 px, the style network two styles at 256 px), three ways, each in a fresh process: the
TorchScript artifact (what the engine runs), its eager twin (`compilation.eager_generator`), and
the twin under `torch.compile` (Inductor; `faceshield serve --compile default`). Reports the first
call (for the compiled one: the compilation) and the median of the calls after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("torchscript", "eager", "compiled")


def child(way: str, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from faceshield.engine.compilation import eager_generator
    from faceshield.engine.modelsets.published import STYLES, VINTAGE, published_victim

    out = {}
    for pv, t in ((VINTAGE, 1), (STYLES, 2)):
        v = published_victim(pv)
        assert v is not None, pv.name
        g = v.generator if way == "torchscript" else eager_generator(v.generator)
        if way == "compiled":
            g = torch.compile(g)
        x = torch.rand(t, 3, v.resolution, v.resolution) * 2 - 1
        c = torch.eye(max(v.c_dim, 1))[:t, : v.c_dim]
        times = []
        for _ in range(repeats + 1):
            xi = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = g(xi, c).float()
            torch.autograd.grad(y.square().sum(), xi)
            times.append(time.perf_counter() - t0)
        out[f"{v.name} {v.resolution} px x{t}"] = {"first": times[0], "median": statistics.median(times[1:])}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-compile.md"))
    p.add_argument("--child", metavar="WAY")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.repeats)))
        return 0

    from faceshield.engine.benchmark import cpu_name

    results = {}
    for way in WAYS:
        cmd = [sys.executable, __file__, "--child", way, "--threads", str(args.threads), "--repeats", str(args.repeats)]
        # Inductor keeps compiled kernels in an on-disk cache (under /tmp/torchinductor_$USER): with
        # it, a second run's "first call" is a cache hit, not a compilation. Measure it cold.
        env = {**os.environ, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
        run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        results[way] = json.loads(run.stdout.strip().splitlines()[-1])
        print(way, results[way], flush=True)
    cases = list(results["torchscript"])
    lines = [
        "# torch.compile for the attack step on a CPU",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, {os.cpu_count()} cores, {args.threads} threads, "
        f"bf16 autocast; load average at the end {os.getloadavg()[0]:.1f}; `python benchmarks/cpu_compile.py`",
        f"- forward + input gradient; seconds: the first call, then the median of {args.repeats} after it; "
        "each way in a fresh process; Inductor's on-disk caches off (the first compiled call is a cold compilation)",
        "",
        "| step | " + " | ".join(f"{w}: first | {w}: median" for w in WAYS) + " | compiled vs TorchScript |",
        "|---|" + "---:|" * (2 * len(WAYS) + 1),
    ]
    for case in cases:
        cells = [f"{results[w][case]['first']:.3f} | {results[w][case]['median']:.3f}" for w in WAYS]
        ratio = results["torchscript"][case]["median"] / results["compiled"][case]["median"]
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
