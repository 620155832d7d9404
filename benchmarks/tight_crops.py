"""Tight face crops, protected by default: does a photo that is already a face crop (a payment
app's aligned selfie, 112-256 px, the face filling most of the frame) get its face found, and
protected, with every option left at its default?

    python benchmarks/tight_crops.py                  # writes benchmarks/results/tight-crops.md
    python benchmarks/tight_crops.py --protect 0      # the detection table only (about a minute)

The crops are cut from real CelebA faces (the felonfinder wheel, read in memory; nothing is
written) the way face pipelines cut them: dlib's aligned chip (`ops.chip`, the geometry of dlib's
`get_face_chip`) at padding 0 (the face fills the frame, as ArcFace-style 112 px crops) and 0.25
(dlib's face-recognition chip), and CelebA's own aligned square resized. For each crop kind:
- found: the default face finding (`faces.choose_faces`, as the command line, the service and the
  SDK run it) finds a face; "cascades only" is the detector before border retries and dlib;
- measurable: dlib's landmarks are found, so the identity verdict can judge the photo;
- protected: on the first `--protect` crops of a kind, the default protection (default models,
  method, policy and verdict rule, on the boxes the default face finding chose).
One thread (the box has 2 cores); bf16 steps where the CPU has them, as by default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = {  # name: (how, size, padding)
    "chip 112 px, padding 0": ("chip", 112, 0.0),
    "chip 160 px, padding 0": ("chip", 160, 0.0),
    "chip 256 px, padding 0": ("chip", 256, 0.0),
    "chip 112 px, padding 0.25": ("chip", 112, 0.25),
    "chip 256 px, padding 0.25": ("chip", 256, 0.25),
    "CelebA square 112 px": ("square", 112, 0.0),
    "CelebA square 178 px": ("square", 178, 0.0),
}
PROTECT_KINDS = ("chip 112 px, padding 0", "chip 256 px, padding 0.25", "CelebA square 178 px")


def crop(image: np.ndarray, points, how: str, size: int, padding: float) -> np.ndarray:
    import torch
    from PIL import Image

    from faceshield.engine.ops.chip import aligned_chip, chip_geometry

    if how == "square":
        return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS))
    photo = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
    chip = aligned_chip(photo, chip_geometry(points, size, padding), size)[0]
    return chip.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def wilson(k: int, n: int) -> str:
    """k/n with its 95% Wilson interval in percent (`evaluation.stats.wilson`)."""
    from faceshield.engine.evaluation.stats import wilson as interval

    e = interval(k, n)
    return "-" if e.mean is None else f"{k}/{n} [{100 * e.low:.0f}, {100 * e.high:.0f}]"


def main() -> int:
    from faceshield.engine.benchmark import cpu_name

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="CelebA faces (default 100)")
    p.add_argument("--protect", type=int, default=6, help="crops of each protected kind to protect (default 6)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tight-crops.md")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
    from faceshield.engine.config import PRODUCT_METHOD
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.faces import NoFaceError, choose_faces
    from faceshield.engine.faces.detect import _classifiers, _search
    from faceshield.engine.faces.landmarks import find_landmarks
    from faceshield.engine.modelsets.defaults import build_default_models
    from faceshield.service.convert import default_policy

    faces = [(i, im, find_landmarks(im)) for i, im in celeba_faces(args.n)]
    aligned = [(i, im, lm.points) for i, im, lm in faces if lm.ok]
    cv2, (frontal, profile) = _classifiers()
    table = {k: {"n": 0, "cascades": 0, "found": 0, "measurable": 0, "protected": [], "seconds": []} for k in KINDS}
    chosen: dict[str, list] = {k: [] for k in PROTECT_KINDS}
    for face_id, image, points in aligned:
        for kind, (how, size, padding) in KINDS.items():
            c = crop(image, points, how, size, padding)
            row = table[kind]
            row["n"] += 1
            gray = cv2.equalizeHist(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY))
            row["cascades"] += bool(_search(frontal, profile, gray, 20))
            try:
                choice = choose_faces(c)
            except NoFaceError:
                choice = None
            row["found"] += choice is not None
            row["measurable"] += bool(find_landmarks(c).ok)
            if kind in chosen and len(chosen[kind]) < args.protect:
                chosen[kind].append((face_id, c, choice))

    if args.protect:
        engine = FaceShieldEngine(build_default_models(), verdict="identity")
        config = AttackConfig.for_method(PRODUCT_METHOD)
        policy = default_policy(None)
        for kind, items in chosen.items():
            for face_id, c, choice in items:
                if choice is None:
                    table[kind]["protected"].append(False)  # refused: no face found, nothing protected
                    continue
                t0 = time.perf_counter()
                out = engine.protect([ProtectRequest(c, face_box=list(choice.boxes))], config, policy=policy)[0]
                table[kind]["seconds"].append(time.perf_counter() - t0)
                table[kind]["protected"].append(bool(out.verdict.protected))
                print(f"{kind} {face_id}: protected={out.verdict.protected}", file=sys.stderr, flush=True)

    lines = [
        "# Tight face crops, protected by default",
        "",
        f"`python benchmarks/tight_crops.py --n {args.n} --protect {args.protect}`, {dt.date.today()}, "
        f"{cpu_name()}, {os.cpu_count()} cores, one thread, CPU only. {len(aligned)} of {args.n} CelebA faces "
        "had dlib landmarks to cut aligned chips from (the others are left out of every row).",
        "",
        "| crop | found by the cascades alone | found by default | measurable (dlib landmarks) | "
        "protected by default | seconds per protection |",
        "|---|---|---|---|---|---|",
    ]
    for kind, r in table.items():
        prot = r["protected"]
        secs = f"{np.median(r['seconds']):.0f}" if r["seconds"] else "-"
        lines.append(
            f"| {kind} | {wilson(r['cascades'], r['n'])} | {wilson(r['found'], r['n'])} | "
            f"{wilson(r['measurable'], r['n'])} | {wilson(sum(prot), len(prot)) if prot else 'not run'} | {secs} |"
        )
    lines += [
        "",
        "Found by default: the detector's cascades, then the same with a border around the image, then dlib's "
        "detector (`faces/detect.py`, `faces/choice.py`). Measurable: the identity verdict's landmarks "
        "(`faces/landmarks.py`, which also retries with a border). Protected: every deepfake of the crop fails "
        "dlib's face check as the person and the crop still passes; a crop where no face is found is refused "
        "(nothing protected) and counts as not protected. In brackets: 95% Wilson intervals, in percent.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
