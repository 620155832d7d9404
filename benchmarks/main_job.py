"""How long the main job takes, and where the time goes: `faceshield protect` on the 512x512 sample
portrait with the default models (vintagify's CycleGAN and the 26-style network's five default
styles), the default method (identity) and policy (ensure).

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
    "default: identity, ensure (auto threads, auto precision)": [],
    "default, float32 (--precision fp32)": ["--precision", "fp32"],
    "default, one thread (--threads 1)": ["--threads", "1"],
    "vintage only (--targets vintage)": ["--targets", "vintage"],
    "paper's union-saliency, MSE verdict (--method union-saliency --policy fixed --verdict disruption)": [
        "--method",
        "union-saliency",
        "--policy",
        "fixed",
        "--verdict",
        "disruption",
    ],
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
            if out.returncode not in (0, 3):  # 3: written, verdict "not protected"
                raise SystemExit(out.stderr[-2000:])
            report = json.loads(out.stdout)
    return times, report


def stages() -> dict[str, float]:
    """The same job in one process, timed stage by stage."""
    t = {}
    t0 = time.perf_counter()
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
    engine = FaceShieldEngine(build_default_models(), verdict="identity")
    t["model load (vintage, styles, TRACER)"] = time.perf_counter() - t0
    request = engine.check(ProtectRequest(image, face_box=list(faces.boxes)))
    t0 = time.perf_counter()
    engine.judge.face(image, tuple(faces.boxes[0]))
    t["identity judge: landmarks + the person's descriptor (dlib)"] = time.perf_counter() - t0
    config = AttackConfig.for_method("identity")
    t0 = time.perf_counter()
    [out] = engine.protect([request], config, policy=Policy(kind="ensure", early_stop=True))
    t[f"protect, identity + ensure ({out.verdict.steps} steps; engine total, verdict included)"] = (
        time.perf_counter() - t0
    )
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

    from faceshield.engine.modelsets.published import STYLES, VINTAGE

    prepared = VINTAGE.set_dir().is_dir() and STYLES.set_dir().is_dir()
    lines = [
        "# The main job: `faceshield protect assets/astronaut.png`",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads); `python benchmarks/main_job.py`",
        "- default models: vintagify's CycleGAN (128 px) and the 26-style network (256 px, styles 00 05 12 14 23), "
        "TRACER TE-0 from the demo set; the face found by the detector; the victims "
        + ("prepared (`faceshield models prepare`)" if prepared else "built in memory at each start (not prepared)"),
        "",
        "| run | wall (s), each run | steps | verdict |",
        "|---|---|---:|---|",
    ]
    for name, extra in RUNS.items():
        times, report = wall(extra, args.repeats)
        problems = (report.get("identity") or {}).get("problems") or report["not_disrupted"]
        verdict = "protected" if report["protected"] else f"not protected ({len(problems)}: {'; '.join(problems[:2])})"
        lines.append(
            f"| {name} | {', '.join(f'{x:.1f}' for x in times)} (median {statistics.median(times):.1f}) | "
            f"{report['steps']} | {verdict} |"
        )
        print(lines[-1], flush=True)
    lines += ["", "Where the time goes (one process, the default job):", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in stages().items()]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    if out.exists():  # keep the dated sections written by hand below the generated part
        kept = out.read_text().split("\n## ", 1)
        if len(kept) == 2:
            text += "\n## " + kept[1]
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
