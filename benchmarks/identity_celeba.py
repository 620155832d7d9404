"""Does the deepfake still pass as the person? Every method on real CelebA faces, judged by dlib.

    python benchmarks/identity_celeba.py --n 100            # writes benchmarks/results/identity-celeba.md

For each face (CelebA aligned photos from the felonfinder 1.0.3 wheel, centre 178 px crop, the
whole crop as the face box) and each method, protects against the default victims (vintage at
128 px, the five default styles at 256 px), then judges the 8-bit result as a forger and a payment
system would: the face recogniser (dlib's ResNet, run by dlib) compares each edit of the protected
photo with the person (fails to match at >= 0.6), plainly, after a real JPEG q75 and after a 0.5x
down-up resize of the protected photo, and compares the protected photo itself with the person
(kept at < 0.3). Edits whose clean version is already >= 0.6 from the person ("no identity to
break") are counted apart. Ruiz et al.'s output-MSE rule is reported beside it.

Results are appended per (face, method) to a JSONL file (numbers only, never pixels), so the
run resumes where it stopped. CelebA's terms: non-commercial research use; nothing of the faces
is written anywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from records import finish  # beside this script (its folder is on sys.path when run)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
METHODS = {
    "identity (product default, ensure)": ("identity", "ensure"),
    "union-saliency (the paper, fixed)": ("union-saliency", "fixed"),
    "pgd (Ruiz, fixed)": ("pgd", "fixed"),
}
AFTER = ("jpeg75", "downscale2")


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.modelsets.defaults import build_default_models

    done = set()
    if args.jsonl.exists():
        for line in args.jsonl.read_text().splitlines():
            r = json.loads(line)
            done.add((r["face"], r["method"]))
    engine = FaceShieldEngine(build_default_models(), verdict="identity", precision=args.precision)
    faces = celeba_faces(args.n, args.start)
    with args.jsonl.open("a") as log:
        for name in args.methods:
            method, policy_kind = METHODS[name]
            config = AttackConfig.for_method(method, **(args.overrides if method == "identity" else {}))
            if method == "identity" and args.stage_overrides:  # e.g. blur=none: the method without its robust stage
                config = config.replace(stages=dataclasses.replace(config.stages, **args.stage_overrides))
            policy = Policy(kind=policy_kind, early_stop=policy_kind == "ensure", verify_after=AFTER)
            if args.margin is not None:
                policy = dataclasses.replace(policy, margin=args.margin)
            for face_id, image in faces:
                if (face_id, name) in done:
                    continue
                t0 = time.perf_counter()
                out = engine.protect(
                    [ProtectRequest(image, face_box=(0, 0, image.shape[1], image.shape[0]))], config, policy=policy
                )[0]
                seconds = time.perf_counter() - t0
                idr = out.verdict.identity
                record = {
                    "face": face_id,
                    "method": name,
                    "psnr": out.input.psnr,
                    "ssim": out.input.ssim,
                    "steps": out.verdict.steps,
                    "seconds": seconds,
                    "protected": out.verdict.protected,
                    "kept": [f.distance for f in idr.faces],
                    "edits": [
                        {"edit": f"{e.victim}/{e.target}", "clean": e.clean, "protected": e.protected, "after": e.after}
                        for e in idr.edits
                    ],
                    "mse_success": {f"{t.victim}/{t.target}": t.success for t in out.targets},
                    "mse_after": dict(out.verdict.after),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(
                    f"{face_id} {name}: protected={out.verdict.protected} {seconds:.1f}s", file=sys.stderr, flush=True
                )


def wilson(k: int, n: int) -> str:
    """k/n in percent with its 95% Wilson interval (`evaluation.stats.wilson`)."""
    from faceshield.engine.evaluation.stats import wilson as interval

    e = interval(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.1f}% [{100 * e.low:.0f}, {100 * e.high:.0f}]"


def summarize(args) -> str:
    rows = [json.loads(line) for f in (args.jsonl, *args.also) if f.exists() for line in f.read_text().splitlines()]
    lines = [
        "# Does the deepfake still pass as the person? CelebA faces, judged by dlib's face recogniser",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores (the 2-core "
        f"development box), torch {args.torch}, {args.threads} thread(s), precision {args.precision}",
        "- `python benchmarks/identity_celeba.py --n 100` (the identity method, faces 0-99), `... --n 30 --methods "
        '"union-saliency (the paper, fixed)" "pgd (Ruiz, fixed)" --jsonl benchmarks/results/identity-celeba-paper.jsonl` '
        "(faces 0-29); then faces 100-199 with every method, 2026-12-06 11:22-12:30 UTC, by two runs at once, one "
        "per core (`taskset -c 0|1 env OMP_NUM_THREADS=1 python benchmarks/identity_celeba.py --n 50 --start "
        "100|150 --jsonl ...`), their records appended to the two JSONL files by method; the paper's method and "
        "PGD on faces 30-99, 2026-12-06 16:48-17:17 UTC, the same way (`--n 35 --start 30|65 --methods ...`), so "
        "every row holds 200 faces; "
        "then `... --report-only --also benchmarks/results/identity-celeba-paper.jsonl`; faces: CelebA aligned "
        "000007 onwards from the felonfinder 1.0.3 wheel (CelebA, Liu et al. ICCV 2015: research use only; nothing "
        "of them is kept), centre 178 px crop, the whole crop as the face box; each row's face count in the table",
        "- victims: the default models (vintage at 128 px; styles 00, 05, 12, 14, 23 at 256 px); epsilon 0.05",
        "- judge: dlib's ResNet on dlib's own aligned chip (original's 5-point landmarks) of the 8-bit edit pasted "
        "over the face box. An edit *fails to match* at distance >= 0.6; the photo is *kept* at < 0.3. "
        "'After JPEG q75' / 'after 0.5x resize': the protected photo re-encoded (Pillow) or shrunk by 2 "
        "(Lanczos) and enlarged back before the victim edits it.",
        "- the judge is the recogniser the identity objective uses; other recognisers (a bank's, an attacker's) "
        "are not measured here.",
        "",
        "| method | faces | deepfakes that fail to match (of edits with an identity to break) | after JPEG q75 "
        "| after 0.5x resize | no identity to break | photos kept (< 0.3), of faces dlib finds | mean PSNR (dB) "
        "| protected (verdict) "
        "| Ruiz MSE rule | mean s/face |",
        "|---|---:|---|---|---|---:|---|---:|---|---|---:|",
    ]
    for name in METHODS:
        rs = [r for r in rows if r["method"] == name]
        if not rs:
            continue
        live = [e for r in rs for e in r["edits"] if e["clean"] is not None and e["clean"] < 0.6]
        none = sum(1 for r in rs for e in r["edits"] if e["clean"] is not None and e["clean"] >= 0.6)
        fail = sum(e["protected"] >= 0.6 for e in live)
        jpeg = sum(e["after"].get("jpeg75", 0) >= 0.6 for e in live)
        down = sum(e["after"].get("downscale2", 0) >= 0.6 for e in live)
        measured = [r for r in rs if all(k is not None for k in r["kept"])]
        kept = sum(all(k < 0.3 for k in r["kept"]) for r in measured)
        mse = [v for r in rs for v in r["mse_success"].values()]
        lines.append(
            f"| {name} | {len(rs)} | {wilson(fail, len(live))} | {wilson(jpeg, len(live))} | {wilson(down, len(live))} "
            f"| {none} | {wilson(kept, len(measured))} ({len(rs) - len(measured)} not measured) "
            f"| {sum(r['psnr'] for r in rs) / len(rs):.2f} "
            f"| {wilson(sum(r['protected'] for r in rs), len(rs))} | {wilson(sum(mse), len(mse))} "
            f"| {sum(r['seconds'] for r in rs) / len(rs):.1f} |"
        )
    lines += [
        "",
        "Per edit (identity method): share of faces whose deepfake fails to match, plain / JPEG q75 / resize",
        "",
    ]
    rs = [r for r in rows if r["method"].startswith("identity")]
    names = sorted({e["edit"] for r in rs for e in r["edits"]})
    lines += [
        "| edit | with an identity to break | fails | after JPEG q75 | after resize | Ruiz MSE rule (all faces) |",
        "|---|---:|---|---|---|---|",
    ]
    for edit in names:
        live = [e for r in rs for e in r["edits"] if e["edit"] == edit and e["clean"] is not None and e["clean"] < 0.6]
        lines.append(
            f"| {edit} | {len(live)} | {wilson(sum(e['protected'] >= 0.6 for e in live), len(live))} "
            f"| {wilson(sum(e['after'].get('jpeg75', 0) >= 0.6 for e in live), len(live))} "
            f"| {wilson(sum(e['after'].get('downscale2', 0) >= 0.6 for e in live), len(live))} "
            f"| {wilson(sum(r['mse_success'].get(edit, False) for r in rs), len(rs))} |"
        )
    files = ", ".join(f"`{f.name}`" for f in (args.jsonl, *args.also))
    lines += ["", f"Intervals: 95% Wilson. Raw records (numbers only): {files} beside this file.", ""]
    return "\n".join(lines)


def parse_sets(pairs: list[str]) -> tuple[dict, dict]:
    """`--set FIELD=VALUE`s -> (stage fields, typed as the field is: on/off for a switch; config
    fields, as numbers)."""
    from faceshield.engine.config import Stages

    switches = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    stages, config = {}, {}
    fields = {f.name: f for f in dataclasses.fields(Stages)}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected FIELD=VALUE")
        if key not in fields:
            config[key] = float(value)
        elif fields[key].type in (bool, "bool"):
            if value.lower() not in switches:
                raise SystemExit(f"--set {key}: a switch takes one of {', '.join(switches)}, not {value!r}")
            stages[key] = switches[value.lower()]
        else:
            stages[key] = value
    return stages, config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--margin", type=float, default=None, help="the ensure policy's margin (default: the product's)")
    p.add_argument("--jsonl", type=Path, default=OUT / "identity-celeba.jsonl")
    p.add_argument("--out", type=Path, help="the report (default: beside --jsonl, same name, .md)")
    p.add_argument("--also", type=Path, nargs="*", default=[], help="more JSONL files to include in the report")
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="identity method: config or stage field"
    )
    args = p.parse_args()
    # Beside the records by default: a run into a private JSONL never overwrites the committed report.
    args.out = args.out or args.jsonl.with_suffix(".md")
    args.stage_overrides, args.overrides = parse_sets(args.set)
    return finish(args, run, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
