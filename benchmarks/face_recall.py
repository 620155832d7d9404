"""How many faces the face detector finds on the real photos at hand, and how often it sees a
face where there is none. Prints the figures and writes them, with the command, machine and
date, to benchmarks/results/face-recall.md (or --out).

    python benchmarks/face_recall.py [--scale 4] [--pad 0.5]

- LFW: scikit-image's `lfw_subset()` (100 faces and 100 non-faces of Labeled Faces in the Wild,
  25 x 25 grey crops). A tight 25-pixel crop is below what a cascade can see and has no
  surroundings, so each is enlarged `--scale` times (bicubic) and padded by `--pad` of its side
  (edge pixels repeated). A face counts as found when the detector returns any box.
- Photos: astronaut, camera (a three-quarter profile) and grace_hopper, with hand-drawn face
  boxes; found when a box covers more than half of the hand-drawn one. The group photo of the
  tests (three faces pasted into a scene): each face found, and nothing else.
- Seconds per detection on a 512 x 512 photo and on a 4000 x 3000 one (the photo enlarged).

Also run, for the comparison in docs/command-line.md ("Faces found"): the frontal cascade alone
(no profile pass) and scikit-image's LBP cascade (`skimage.feature.Cascade`, its bundled OpenCV file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cli_startup import machine  # noqa: E402

from faceshield.engine.faces import detect as detect_module  # noqa: E402
from faceshield.engine.faces import detect_faces  # noqa: E402
from tests.photos import FACES, group_photo, overlap, photo  # noqa: E402


def lfw(scale: int, pad: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from skimage.data import lfw_subset

    images = []
    for x in lfw_subset():
        side = 25 * scale
        big = np.asarray(Image.fromarray((x * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC))
        p = int(side * pad)
        big = np.pad(big, p, mode="edge")
        images.append(np.repeat(big[:, :, None], 3, axis=2))
    return images[:100], images[100:]


def frontal_only(image: np.ndarray) -> list:
    cv2, (frontal, _profile) = detect_module._classifiers()
    gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    m = detect_module.MIN_FACE
    found = frontal.detectMultiScale(gray, detect_module.SCALE_STEP, detect_module.FRONTAL_NEIGHBOURS, minSize=(m, m))
    return [(x, y, x + w, y + h) for x, y, w, h in found]


def skimage_lbp(image: np.ndarray) -> list:
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    global _LBP
    try:
        cascade = _LBP
    except NameError:
        cascade = _LBP = Cascade(lbp_frontal_face_cascade_filename())
    gray = np.asarray(Image.fromarray(image).convert("L")) / 255.0
    h, w = gray.shape
    found = cascade.detect_multi_scale(img=gray, scale_factor=1.2, step_ratio=1, min_size=(20, 20), max_size=(h, w))
    return [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in found]


def measure(name: str, detect, faces: list, others: list) -> dict:
    t0 = time.perf_counter()
    found = sum(bool(len(detect(x))) for x in faces)
    false = sum(bool(len(detect(x))) for x in others)
    photos = {}
    for key, truth in FACES.items():
        boxes = [tuple(int(v) for v in b) for b in detect(photo(key))]
        photos[key] = (any(overlap(b, truth) > 0.5 for b in boxes), len(boxes))
    scene, regions = group_photo()
    boxes = [tuple(int(v) for v in b) for b in detect(scene)]
    group = (sum(any(overlap(b, r) > 0.9 for b in boxes) for r in regions), len(boxes))
    return {
        "name": name,
        "lfw": found,
        "false": false,
        "photos": photos,
        "group": group,
        "seconds": time.perf_counter() - t0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--pad", type=float, default=0.5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "face-recall.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    faces, others = lfw(args.scale, args.pad)
    rows = [
        measure(detect_module.DETECTOR_NAME + " (shipped)", detect_faces, faces, others),
        measure("OpenCV frontal alt2 only", frontal_only, faces, others),
        measure("scikit-image LBP cascade", skimage_lbp, faces, others),
    ]
    timings = {}
    for label, image in (
        ("512 x 512", photo("astronaut")),
        ("4000 x 3000", np.asarray(Image.fromarray(photo("astronaut")).resize((4000, 3000)))),
    ):
        detect_faces(image)
        t0 = time.perf_counter()
        for _ in range(3):
            detect_faces(image)
        timings[label] = (time.perf_counter() - t0) / 3
    lines = [
        "# Face detector: recall on the real photos at hand",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{shlex.join(['python', 'benchmarks/face_recall.py', *sys.argv[1:]])}`",
        f"- machine: {machine()}",
        f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- LFW crops enlarged {args.scale}x and padded by {args.pad} of their side",
        "",
        "| detector | LFW faces found (of 100) | LFW non-faces with a box (of 100) | astronaut | camera | grace_hopper "
        "| group photo: faces found / boxes | seconds for all |",
        "|---|---:|---:|---|---|---|---|---:|",
    ]
    for r in rows:
        ph = [f"{'found' if ok else 'MISSED'} ({n} box{'es' if n != 1 else ''})" for ok, n in r["photos"].values()]
        lines.append(
            f"| {r['name']} | {r['lfw']} | {r['false']} | {' | '.join(ph)} | {r['group'][0]} of 3 / {r['group'][1]} "
            f"| {r['seconds']:.1f} |"
        )
        print(lines[-1])
    lines += [
        "",
        "Seconds per detection (shipped detector, mean of 3 after one warm-up): "
        + ", ".join(f"{k}: {v:.3f} s" for k, v in timings.items()),
        "",
    ]
    print(lines[-2])
    out = Path(args.out)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
