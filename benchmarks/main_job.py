"""How long the main job takes, and where the time goes: `faceshield protect` on the 512x512 sample
portrait with the default models (the toy StarGAN and the vintagify victim).

    python benchmarks/main_job.py            # writes benchmarks/results/main-job.md

Wall times are of the whole command as a user runs it (a fresh process each time: Python start,
imports, model load, face detection, protection, PNG); the breakdown is measured in-process, stage
by stage, from the same calls. Run it on an idle machine: every figure is one job at a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "astronaut.png"
RUNS = {
    "paper's union-saliency (--policy fixed)": ["--policy", "fixed"],
    "verified (default: --policy ensure)": [],
    "verified, the real victim only (--targets vintage)": ["--targets", "vintage"],
}


def wall(extra: list[str], repeats: int) -> tuple[list[float], dict]:
    times, report = [], {}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "faceshield.cli", "protect", str(SAMPLE), "-o", f"{d}/p.png", "--json", *extra],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            times.append(time.perf_counter() - t0)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            report = json.loads(out.stdout)
    return times, report


def stages() -> dict[str, float]:
    """The same job in one process, timed stage by stage."""
    t = {}
    t0 = time.perf_counter()
    import numpy as np
    import torch  # noqa: F401

    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.faces import choose_faces
    from faceshield.engine.io.images import decode_image, encode_png
    from faceshield.engine.modelsets.defaults import build_default_models

    t["imports (FaceShield; torch already loaded)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    image = decode_image(SAMPLE.read_bytes())
    faces = choose_faces(image, None, True, "refuse")
    t["decode + face detection"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = FaceShieldEngine(build_default_models())
    t["model load (demo set + vintagify)"] = time.perf_counter() - t0
    request = engine.check(ProtectRequest(image, face_box=list(faces.boxes)))
    config = AttackConfig.for_method("union-saliency")
    t0 = time.perf_counter()
    [out] = engine.protect([request], config, policy=Policy())
    t["protect, fixed (engine total)"] = time.perf_counter() - t0
    result = engine.protector.protect(
        [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1],
        engine._labels([request]),
        config,
        boxes=[list(faces.boxes)],
        compute_outputs=False,
    )
    for k, v in result.timings.items():
        if k != "total":
            t[f"  attack stage: {k}"] = v
    t0 = time.perf_counter()
    encode_png(out.protected)
    t["PNG encode"] = time.perf_counter() - t0
    return t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "main-job.md"))
    args = p.parse_args()
    import torch

    from faceshield.engine.modelsets.vintage import set_dir

    prepared = set_dir().is_dir()
    lines = [
        "# The main job: `faceshield protect assets/astronaut.png`",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads); `python benchmarks/main_job.py`",
        "- default models: the demo StarGAN (5 targets, 64 px) and vintagify's CycleGAN (128 px), TRACER TE-0; "
        "the face found by the detector; vintagify "
        + ("prepared (`faceshield models prepare`)" if prepared else "built in memory at each start (not prepared)"),
        "",
        "| run | wall (s), each run | steps | verdict |",
        "|---|---|---:|---|",
    ]
    for name, extra in RUNS.items():
        times, report = wall(extra, args.repeats)
        verdict = "protected" if report["protected"] else f"not protected ({len(report['not_disrupted'])} edits)"
        lines.append(
            f"| {name} | {', '.join(f'{x:.1f}' for x in times)} (median {statistics.median(times):.1f}) | "
            f"{report['steps']} | {verdict} |"
        )
        print(lines[-1], flush=True)
    lines += ["", "Where the time goes (one process, paper's schedule):", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in stages().items()]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
