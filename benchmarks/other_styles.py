"""The 21 styles the default protection does not aim at: does protecting against five styles of the
style network also break the other 21 (the same network, other rows of its style table)?

    OMP_NUM_THREADS=1 python benchmarks/other_styles.py --n 20     # ~20 s per face on one thread
    # writes benchmarks/results/other-styles.md (numbers per face in other-styles.jsonl beside it)

Faces: CelebA aligned photos 000007 onwards from the felonfinder 1.0.3 wheel, centre 178 px crop,
the whole crop as the face box (as identity_celeba.py and held_out.py). Each face is protected
by default (method identity, policy ensure, vintage and the five default styles 00 05 12 14 23),
and a random +-epsilon sign-noise copy is made for the floor; every one of the 26 styles is then
judged by the engine's identity judge (dlib: an edit fails at >= 0.6 from the person, among edits
whose clean edit still matches). Records per face are numbers only; no face is written anywhere
(CelebA: non-commercial research use).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from records import finish  # beside this script (its folder is on sys.path when run)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
SAME_PERSON = 0.6


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.config import PRODUCT_METHOD
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.modelsets.defaults import build_default_models

    done = set()
    if args.jsonl.exists():
        done = {json.loads(line)["face"] for line in args.jsonl.read_text().splitlines()}
    engine = FaceShieldEngine(build_default_models(), verdict="identity")
    styles = next(v for v in engine.models.victims if v.name == "styles")
    every_style = [f"styles/{t}" for t in styles.attributes]
    config, policy = AttackConfig.for_method(PRODUCT_METHOD), Policy(kind="ensure", early_stop=True)
    levels = np.floor(config.epsilon * 127.5)
    with args.jsonl.open("a") as log:
        for face_id, image in celeba_faces(args.n, args.start):
            if face_id in done:
                continue
            box = (0, 0, image.shape[1], image.shape[0])
            t0 = time.perf_counter()
            out = engine.protect([ProtectRequest(image, face_box=box)], config, policy=policy)[0]
            seconds = time.perf_counter() - t0
            rng = np.random.default_rng([0, int(face_id)])
            noise = np.clip(image + rng.choice([-1.0, 1.0], size=image.shape) * levels, 0, 255).astype(np.uint8)
            record = {"face": face_id, "psnr": out.input.psnr, "verdict": out.verdict.protected, "seconds": seconds}
            for row, photo in (("protected", out.protected), ("noise", noise)):
                report = engine.evaluate_identity(image, photo, targets=every_style, face_box=box)
                record[row] = {e.target: [e.clean, e.protected] for e in report.edits}
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(f"{face_id}: protect {seconds:.1f}s, total {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def summarize(args) -> str:
    from faceshield.engine.benchmark import cpu_name
    from faceshield.engine.evaluation.stats import wilson
    from faceshield.engine.modelsets.published import STYLES

    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines()]

    def share(row: str, styles: list[str]) -> tuple[str, int, int]:
        live = [
            d[1]
            for r in rows
            for t, d in r[row].items()
            if t in styles and d[0] is not None and d[0] < SAME_PERSON and d[1] is not None
        ]
        k, n = sum(p >= SAME_PERSON for p in live), len(live)
        e = wilson(k, n)
        return ("-" if e.mean is None else f"{100 * e.mean:.0f}% [{100 * e.low:.0f}, {100 * e.high:.0f}]"), k, n

    names = sorted({t for r in rows for t in r["protected"]})
    default = list(STYLES.default_targets)
    other = [t for t in names if t not in default]
    lines = [
        "# The styles the default protection does not aim at (the same network's other 21 styles)",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, {os.cpu_count()} cores; "
        f"`OMP_NUM_THREADS=1 python benchmarks/other_styles.py --n {len(rows)}`",
        f"- {len(rows)} CelebA faces (000007 onwards, centre 178 px crop, the whole crop as the face box), each "
        "protected by default (identity, ensure: vintage and styles 00 05 12 14 23); mean PSNR "
        f"{np.mean([r['psnr'] for r in rows]):.2f} dB; the engine's own verdict 'protected' on "
        f"{sum(r['verdict'] for r in rows)} of {len(rows)}",
        "- per style: of the faces whose clean edit still matches the person (dlib, < 0.6), the share whose "
        "edit of the protected photo fails the check (>= 0.6); the noise row: random +-epsilon sign noise "
        "(32.7 dB), the floor. 95% Wilson intervals; the styles of one face are correlated",
        "",
        "| styles | edits with an identity to break | protected: fail the face check | noise: fail |",
        "|---|---:|---|---|",
    ]
    for label, group in (("the 5 default styles (in the set)", default), ("the other 21 (not aimed at)", other)):
        p, _, n = share("protected", group)
        q, _, _ = share("noise", group)
        lines.append(f"| {label} | {n} | {p} | {q} |")

    def faces(row: str, group: list[str]) -> str:
        live = [
            [d[1] >= SAME_PERSON for t, d in r[row].items() if t in group and d[0] is not None and d[0] < SAME_PERSON]
            for r in rows
        ]
        live = [x for x in live if x]
        e = wilson(sum(all(x) for x in live), len(live))
        return "-" if e.mean is None else f"{100 * e.mean:.0f}% [{100 * e.low:.0f}, {100 * e.high:.0f}] of {len(live)}"

    lines += [
        "",
        f"Per face, every edit with an identity to break failing: the 21 others {faces('protected', other)} "
        f"faces (noise {faces('noise', other)}); the 5 defaults {faces('protected', default)}.",
    ]
    lines += [
        "",
        "| style | in the set | clean edits that still match | protected: fail | noise: fail |",
        "|---|---|---:|---|---|",
    ]
    for t in names:
        p, _, n = share("protected", [t])
        q, _, _ = share("noise", [t])
        lines.append(f"| {t} | {'yes' if t in default else ''} | {n} of {len(rows)} | {p} | {q} |")
    lines += ["", f"Raw records (numbers only): `{args.jsonl.name}` beside this file.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jsonl", type=Path, default=OUT / "other-styles.jsonl")
    p.add_argument("--out", type=Path, default=OUT / "other-styles.md")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    return finish(args, run, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
