"""Measuring a demo-set candidate on held-out synthetic faces, and choosing what ships
(scripts/build_demo_models.py): the issue's targets, the figures, the score."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import argparse  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import _training_env  # noqa: E402, F401  (the engine on sys.path, stand-ins for missing packages)
import torch  # noqa: E402

from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES  # noqa: E402

if TYPE_CHECKING:
    from faceshield.engine.models.stargan import Generator
    from faceshield.engine.models.tracer import TRACER

log = logging.getLogger("build_demo_models")
from faceshield.engine.modelsets.store import DEMO_NAME  # noqa: E402

TARGETS = {"edit_accuracy": 0.90, "saliency_mae": 0.05, "union_success": 0.95, "noise_success": 0.05}


def measure_candidate(
    name: str,
    g: Generator,
    sal_bytes: bytes,
    sal_params: dict,
    t: TRACER,
    record: dict,
    args: argparse.Namespace,
    resolution: int,
    faces,
    out: Path,
):
    """Export one generator, pair it with the exported TRACER in a scratch set, load that set
    as FaceShield will, and measure it. Returns (metrics, manifest, files)."""
    from faceshield.engine import modelsets as repo
    from faceshield.engine.synthetic.evaluate import edit_accuracy, protection_figures, saliency_mae

    attributes = list(CELEBA_DEFAULT_ATTRIBUTES)
    gen_bytes, ts_diff = repo.export_generator(g, resolution, attributes, {"trained_on": "faceshield synthetic faces"})
    g_record, t_record = record["candidates"].get(name, {}), record.get("tracer", {})
    produced = {
        "tool": "scripts/build_demo_models.py",
        "seed": args.seed,
        "candidate": name,
        "training": {k: _training_summary(v) for k, v in (("stargan", g_record), ("tracer", t_record))},
        "data": "faceshield.engine.synthetic (procedural faces), train split; held-out figures on the test split",
        "checks": {"torchscript_max_diff": ts_diff, **record.get("saliency_checks", {})},
        "settings": {"stargan": g_record.get("settings", {}), "tracer": t_record.get("settings", {})},
    }
    description = (
        f"Demo pair trained by FaceShield on synthetic faces: StarGAN (official architecture, conv_dim "
        f"{g.conv_dim}, repeat_num {g.repeat_num}, {resolution}px) and TRACER {t.variant.name} (input "
        f"{t.input_size}). For trying FaceShield out; no protection against real deepfake models."
    )
    manifest = repo.build_manifest(
        name=DEMO_NAME,
        version=args.version,
        resolution=resolution,
        attributes=attributes,
        generator_bytes=gen_bytes,
        generator_parameters={"conv_dim": g.conv_dim, "c_dim": g.c_dim, "repeat_num": g.repeat_num},
        generator_source={"script": "scripts/train_demo_stargan.py", "candidate": name},
        saliency_bytes=sal_bytes,
        saliency_parameters=sal_params,
        saliency_source={"script": "scripts/train_demo_tracer.py"},
        produced_by=produced,
        trained=True,
        description=description,
    )
    files = {repo.GENERATOR_FILE: gen_bytes, repo.SALIENCY_FILE: sal_bytes}
    scratch = out.parent / f".{out.name}.measure-{name}"
    if scratch.exists():
        shutil.rmtree(scratch)
    repo.write_model_set(scratch, manifest, files)
    try:
        providers = None if args.device.startswith("cuda") else ["CPUExecutionProvider"]
        models = repo.load_model_set(scratch, providers=providers)
        dev = torch.device(args.device)
        metrics = {
            "held_out": {
                "split": "test",
                "seed": args.seed,
                "faces": args.eval_faces,
                "protection_faces": args.protect_faces,
            },
            "edit_accuracy": edit_accuracy(models.generator.to(dev), faces, dev),
            "saliency_mae": saliency_mae(models.saliency, faces),
        }
        models.generator.cpu()
        metrics["protection"] = protection_figures(
            models, faces[: args.protect_faces], device=args.device, seed=args.seed
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    metrics["targets"] = dict(TARGETS)
    metrics["meets_targets"] = _meets(metrics)
    log.info("candidate %s: %s", name, json.dumps(metrics))
    return metrics, manifest, files


def _training_summary(stage: dict) -> dict:
    """What the manifest says about one model's training: the run, and any refinement runs."""
    keys = ("iterations", "train_seconds", "device", "torch", "seed")
    summary = {k: stage.get(k) for k in keys}
    if stage.get("refinements"):
        summary["refinements"] = [
            {
                **{k: r.get(k) for k in keys},
                "lr": r.get("settings", {}).get("lr"),
                "batch": r.get("settings", {}).get("batch"),
            }
            for r in stage["refinements"]
        ]
    return summary


def _score(metrics: dict, generator_bytes: int) -> tuple:
    """Which candidate to ship: one that meets every target, the smallest such (faster on a
    CPU, smaller to ship); else the most targets met, then union-saliency success, then edits."""
    met = metrics["meets_targets"]
    if all(met.values()):
        return (1, -generator_bytes)
    return (
        0,
        met["edit_accuracy"],
        sum(met.values()),
        metrics["protection"]["union-saliency"]["success_rate"],
        metrics["edit_accuracy"]["overall"],
    )


def _meets(m: dict) -> dict:
    p = m["protection"]
    return {
        "edit_accuracy": m["edit_accuracy"]["overall"] >= TARGETS["edit_accuracy"],
        "saliency_mae": m["saliency_mae"] <= TARGETS["saliency_mae"],
        "union_success": p["union-saliency"]["success_rate"] >= TARGETS["union_success"],
        "union_psnr_above_pgd": p["union-saliency"]["psnr"] > p["pgd"]["psnr"],
        "noise_success": p["uniform-noise"]["success_rate"] <= TARGETS["noise_success"],
    }


# -- plumbing --------------------------------------------------------------------------------
