"""Where one protection of the main job spends its time, by function (cProfile), in-process.

    python benchmarks/profile_main_job.py [--threads 2] [--top 45]

The sample portrait, its face found by default, the default models, method, policy and verdict
rule, as `faceshield protect` runs them (model load and face detection outside the profile).
Prints the cumulative-time table; benchmarks/results/cpu-speed.md summarises a run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=45)
    args = p.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
    from faceshield.engine.config import PRODUCT_METHOD
    from faceshield.engine.faces import choose_faces
    from faceshield.engine.modelsets.defaults import build_default_models
    from faceshield.service.convert import default_policy

    torch.set_num_threads(args.threads)
    image = np.array(Image.open(ROOT / "assets" / "astronaut.png").convert("RGB"))
    engine = FaceShieldEngine(build_default_models(), verdict="identity")
    faces = choose_faces(image)
    config, policy = AttackConfig.for_method(PRODUCT_METHOD), default_policy(None)
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    out = engine.protect([ProtectRequest(image, face_box=list(faces.boxes))], config, policy=policy)[0]
    profile.disable()
    v = out.verdict
    print(f"protect: {time.perf_counter() - t0:.1f} s, {v.steps} steps in {v.rounds} rounds, protected={v.protected}")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
