"""One attack step on a CPU: float32 against bf16 autocast, one thread against two.

    python benchmarks/cpu_speed.py            # writes benchmarks/results/cpu-speed.md

Times forward + input gradient of each default victim at its default resolution (vintage at
128 px, the style network at 256 px with two styles, as the identity method's step takes them)
and of the face recogniser on one aligned chip, median of `--repeats` after a warm-up, in each
precision and thread count, each in a fresh process so thread pools do not carry over. Run it on
an idle machine, one job at a time; the figures of a loaded machine say how the thread count
collapses (the reason `--threads auto` exists) rather than how fast the code is.
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


def child(threads: int, precision: str, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from faceshield.engine.models.recogniser import load_recogniser
    from faceshield.engine.modelsets.published import STYLES, VINTAGE, published_victim

    cases = {}
    for pv, t in ((VINTAGE, 1), (STYLES, 2)):
        v = published_victim(pv)
        assert v is not None, pv.name
        x = torch.rand(t, 3, v.resolution, v.resolution) * 2 - 1
        c = torch.eye(max(v.c_dim, 1))[:t, : v.c_dim]
        cases[f"{v.name} {v.resolution} px x{t}"] = (v.generator, x, c)
    rec = load_recogniser()
    cases["recogniser, one chip"] = (lambda x, c: rec((x + 1) * 127.5), torch.rand(1, 3, 150, 150) * 2 - 1, None)
    out = {}
    for name, (g, x, c) in cases.items():
        times = []
        for k in range(repeats + 1):
            xi = x.clone().requires_grad_(True)
            t0 = time.perf_counter()
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    y = g(xi, c).float()
            else:
                y = g(xi, c)
            (grad,) = torch.autograd.grad(y.square().sum(), xi)
            if k:
                times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main() -> int:
    from faceshield.engine.benchmark import cpu_name

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-speed.md"))
    p.add_argument("--child", nargs=2, metavar=("THREADS", "PRECISION"))
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.repeats)))
        return 0
    import torch

    from faceshield.engine.execution import cpu_has_native_bf16

    rows = {}
    for threads in (1, 2):
        for precision in ("fp32", "bf16"):
            cmd = [sys.executable, __file__, "--child", str(threads), precision, "--repeats", str(args.repeats)]
            r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if r.returncode:
                raise SystemExit(r.stderr[-2000:])
            rows[(threads, precision)] = json.loads(r.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    names = list(next(iter(rows.values())))
    lines = [
        "# One attack step on a CPU: float32 vs bf16 autocast, 1 vs 2 threads",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, "
        f"{os.cpu_count()} cores, native bf16: {cpu_has_native_bf16()}; torch {torch.__version__}; "
        f"load average at the end {load:.1f}; `python benchmarks/cpu_speed.py`",
        "- forward + input gradient, median of the repeats (seconds); each cell a fresh process",
        "",
        "| step | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}, {p}" for t, p in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{rows[k][n]:.3f}" for k in rows) + " |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
