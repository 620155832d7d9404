#!/usr/bin/env python3
"""Build the demo model set: train StarGAN and TRACER on synthetic faces, measure, export.

One process, one wall-time budget (--seconds, everything included):
  1. render the training faces (seeded; every identity under all 12 attribute vectors);
  2. train each StarGAN candidate (scripts/train_demo_stargan.py; by default two: conv_dim 16
     with the paired term throughout, conv_dim 32 with the paired term fading so that the
     official losses finish the training), then TRACER TE-0 (scripts/train_demo_tracer.py),
     sharing the time left equally;
  3. save every model as a PyTorch checkpoint under --work/checkpoints (the export can be redone
     from them with --from-checkpoints, e.g. on a machine that has ONNX Runtime);
  4. export: TorchScript generators and the ONNX TRACER, each checked against its PyTorch
     model; TRACER's convolution weights stored as int8 (or float16) to keep the set small;
  5. measure each candidate with TRACER, as exported, on held-out synthetic faces (edit accuracy
     read from the pixels, TRACER MAE, protection success of union-saliency and pgd, uniform
     noise), keep the candidate that meets the most targets, and write the set with its figures
     (and every candidate's) in the manifest, atomically, to --out.

    python scripts/build_demo_models.py --device cuda --seconds 330 --work OUT --out OUT/demo
    python scripts/build_demo_models.py --from-checkpoints OUT/checkpoints --out engine/faceshield/engine/assets/models/demo
    python scripts/build_demo_models.py --from-checkpoints OUT/checkpoints --refine-tracer 900 --device cpu \
        --t-lr 5e-4 --work W --out W/demo    # continue TRACER (a short GPU lease leaves it short), then export

Same seed and iteration counts, same weights (on one machine; GPUs are not bit-reproducible).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _training_env  # noqa: E402

_training_env.prepare()

import torch  # noqa: E402
import train_demo_stargan as stargan_training  # noqa: E402
import train_demo_tracer as tracer_training  # noqa: E402
from _demo_measure import TARGETS, _meets, _score, _training_summary, measure_candidate  # noqa: E402, F401
from _weight_storage import STORAGE_MAE_SLACK, choose_weight_storage, compress_onnx_weights  # noqa: E402, F401

from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES  # noqa: E402
from faceshield.engine.models.stargan import Generator, load_generator  # noqa: E402
from faceshield.engine.models.tracer import TRACER, half_state_dict, load_tracer  # noqa: E402
from faceshield.engine.synthetic import held_out_faces, render_pool  # noqa: E402

log = logging.getLogger("build_demo_models")

TRACER_CKPT = "tracer.pt"
RECORD = "record.json"
DEFAULT_CANDIDATES = ("g16:conv_dim=16", "g32:conv_dim=32,pair_decay_to=0.2")


# -- ONNX weight storage ---------------------------------------------------------------------
def parse_candidate(text: str, base: stargan_training.StarGANSettings) -> tuple[str, stargan_training.StarGANSettings]:
    """ "name:field=value,field=value" -> (name, settings with those fields changed)."""
    name, _, spec = text.partition(":")
    if not name.isidentifier():
        raise SystemExit(f"candidate {text!r}: start with a name, e.g. g16:conv_dim=16")
    fields = dict(base.__dict__)
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"candidate {name}: unknown StarGAN setting {key!r}")
        fields[key] = type(fields[key])(value)
    return name, stargan_training.StarGANSettings(**fields)


def stargan_checkpoint(name: str) -> str:
    return f"stargan_{name}.pt"


def train(args: argparse.Namespace, deadline: float, work: Path) -> tuple[dict[str, Generator], TRACER, dict]:
    base = stargan_training.settings_from_args(_sub(args, "g_"))
    candidates = [parse_candidate(c, base) for c in (args.candidate or DEFAULT_CANDIDATES)]
    t_settings = tracer_training.settings_from_args(_sub(args, "t_"))
    if any(c.resolution != base.resolution for _, c in candidates):
        raise SystemExit("every candidate must share the resolution (set it with --g-resolution)")
    if t_settings.resolution != base.resolution:
        t_settings = tracer_training.TracerSettings(**{**t_settings.__dict__, "resolution": base.resolution})
    t0 = time.perf_counter()
    identities = max([c.identities for _, c in candidates] + [t_settings.identities])
    pool = render_pool(args.seed, "train", identities, base.resolution, workers=args.workers)
    log.info("rendered %d identities x 12 in %.1f s", len(pool), time.perf_counter() - t0)

    record: dict = {"pool": {"seed": args.seed, "identities": len(pool)}, "candidates": {}}
    generators: dict[str, Generator] = {}
    for k, (name, settings) in enumerate(candidates):
        left = deadline - time.perf_counter() - args.reserve
        share = left / (len(candidates) - k + 1)  # this candidate, the rest, and TRACER: equal shares
        if share < 5:
            raise SystemExit(f"--seconds leaves {left:.0f} s for training after rendering and the reserve; raise it")
        log.info("StarGAN candidate %s: %.0f s (%s)", name, share, settings)
        g, g_record = stargan_training.train_stargan(
            settings, args.device, args.seed, share, log_every=args.log_every, pool=pool
        )
        _save(g.state_dict(), work / "checkpoints" / stargan_checkpoint(name))
        generators[name] = g
        record["candidates"][name] = g_record
    t_seconds = max(deadline - time.perf_counter() - args.reserve, 5.0)
    t, t_record = tracer_training.train_tracer(
        t_settings, args.device, args.seed + 1, t_seconds, log_every=args.log_every, pool=pool
    )
    _save(half_state_dict(t), work / "checkpoints" / TRACER_CKPT)
    record["tracer"] = t_record
    return generators, t, record


def load_checkpoints(folder: Path) -> tuple[dict[str, Generator], TRACER, dict]:
    record = json.loads((folder.parent / RECORD).read_text()) if (folder.parent / RECORD).is_file() else {}
    generators = {}
    for path in sorted(folder.glob("stargan_*.pt")):
        generators[path.stem[len("stargan_") :]] = load_generator(path, c_dim=len(CELEBA_DEFAULT_ATTRIBUTES))
    if not generators:
        raise SystemExit(f"no stargan_*.pt in {folder}")
    settings = record.get("tracer", {}).get("settings", {})
    t = load_tracer(folder / TRACER_CKPT, settings.get("variant", "TE-0"), input_size=settings.get("input_size", 128))
    record.setdefault("candidates", {name: {} for name in generators})
    return generators, t, record


def refine_tracer(t: TRACER, record: dict, args: argparse.Namespace, work: Path) -> tuple[TRACER, dict]:
    """Continue training a loaded TRACER for --refine-tracer seconds (a GPU build's TRACER gets
    the time a short device lease could not give it; any machine, the CPU included). Settings:
    the recorded run's, overridden by --t-*. The refined checkpoint and the generators it is
    paired with go to --work/checkpoints, so the result can be exported again from there."""
    recorded = record.get("tracer", {}).get("settings", {})
    overrides = {k: v for k, v in vars(_sub(args, "t_")).items() if v is not None}
    fields = tracer_training.TracerSettings.__dataclass_fields__
    settings = tracer_training.TracerSettings(**{k: v for k, v in {**recorded, **overrides}.items() if k in fields})
    log.info("refining TRACER for %.0f s on %s (%s)", args.refine_tracer, args.device, settings)
    t, stage = tracer_training.train_tracer(
        settings,
        args.device,
        args.seed + 1,
        args.refine_tracer,
        workers=args.workers,
        log_every=args.log_every,
        init=t.state_dict(),
    )
    record = {
        **record,
        "tracer": {
            **record.get("tracer", {}),
            "refinements": [*record.get("tracer", {}).get("refinements", []), stage],
        },
    }
    source = Path(args.from_checkpoints).resolve()
    target = work / "checkpoints"
    target.mkdir(parents=True, exist_ok=True)
    if source != target:
        for path in source.glob("stargan_*.pt"):
            shutil.copyfile(path, target / path.name)
    _save(half_state_dict(t), target / TRACER_CKPT)
    return t, record


def quick_metrics(generators: dict[str, Generator], t: TRACER, args: argparse.Namespace, resolution: int) -> dict:
    """PyTorch-only figures (no ONNX needed), on the training device."""
    from faceshield.engine.saliency import TorchSaliency
    from faceshield.engine.synthetic.evaluate import edit_accuracy, saliency_mae

    faces = held_out_faces(args.seed, args.eval_faces, resolution)
    dev = torch.device(args.device)
    out = {"saliency_mae": saliency_mae(TorchSaliency(t, device=dev), faces)}
    t.cpu()
    for name, g in generators.items():
        out[f"edit_accuracy_{name}"] = edit_accuracy(g.to(dev), faces, dev)
        g.cpu()
    return out


def export_and_measure(
    generators: dict[str, Generator], t: TRACER, record: dict, args: argparse.Namespace, out: Path
) -> dict:
    from faceshield.engine import modelsets as repo

    resolution = _resolution(record, args)
    faces = held_out_faces(args.seed, args.eval_faces, resolution)
    onnx_full, onnx_diff = repo.export_saliency(t, metadata={"faceshield.trained": "synthetic faces"})
    storage, sal_bytes, storage_check = choose_weight_storage(t, onnx_full, faces, args.saliency_weights)
    record["saliency_checks"] = {"onnx_max_diff": onnx_diff, "weight_storage": storage_check}
    log.info(
        "TRACER: ONNX diff %.1e; weights stored as %s (%.1f MB): %s",
        onnx_diff,
        storage,
        len(sal_bytes) / 1e6,
        storage_check,
    )
    sal_params = {"variant": t.variant.name, "input_size": t.input_size, "weight_storage": storage}
    results = {}
    for name, g in generators.items():
        try:
            results[name] = measure_candidate(name, g, sal_bytes, sal_params, t, record, args, resolution, faces, out)
        except Exception:
            log.exception("candidate %s failed to export or measure; skipping it", name)
    if not results:
        raise SystemExit("no candidate could be exported and measured")
    best = max(results, key=lambda n: _score(results[n][0], len(results[n][2][repo.GENERATOR_FILE])))
    metrics, manifest, files = results[best]
    metrics = {
        **metrics,
        "candidate": best,
        "candidates": {
            n: {
                "edit_accuracy": r[0]["edit_accuracy"]["overall"],
                "protection": r[0]["protection"],
                "meets_targets": r[0]["meets_targets"],
            }
            for n, r in results.items()
        },
    }
    manifest = repo.ModelSetManifest(**{**manifest.__dict__, "metrics": metrics})
    repo.write_model_set(out, manifest, files, overwrite=args.force)
    log.info("shipping candidate %s", best)
    return metrics


def _resolution(record: dict, args: argparse.Namespace) -> int:
    for c in record.get("candidates", {}).values():
        if c.get("settings"):
            return int(c["settings"]["resolution"])
    return int(args.g_resolution or stargan_training.StarGANSettings().resolution)


def _save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _training_env.save_atomically(obj, path)
    log.info("saved %s (%.1f MB)", path, path.stat().st_size / 1e6)


def _sub(args: argparse.Namespace, prefix: str) -> argparse.Namespace:
    return argparse.Namespace(**{k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)})


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seconds", type=float, default=330.0, help="wall-time budget of the whole build (default 330)")
    p.add_argument("--reserve", type=float, default=85.0, help="seconds kept for exporting and measuring (default 85)")
    p.add_argument(
        "--candidate",
        action="append",
        metavar="NAME:FIELD=V,...",
        help="a StarGAN configuration to train (repeatable; default: "
        + " and ".join(DEFAULT_CANDIDATES)
        + "); fields as in --g-*",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes rendering faces (default: all cores)")
    p.add_argument("--out", required=True, help="the model set directory to write (e.g. .../assets/models/demo)")
    p.add_argument("--work", help="where checkpoints, record.json and build.log go (default: beside --out)")
    p.add_argument("--from-checkpoints", metavar="DIR", help="skip training: export and measure these checkpoints")
    p.add_argument(
        "--refine-tracer",
        type=float,
        metavar="SECONDS",
        help="with --from-checkpoints: first continue training their TRACER this long (settings: recorded, then --t-*)",
    )
    p.add_argument("--eval-faces", type=int, default=200, help="held-out faces for edit accuracy and MAE")
    p.add_argument("--protect-faces", type=int, default=32, help="held-out faces for the protection figures")
    p.add_argument(
        "--saliency-weights",
        choices=("auto", "int8", "float16", "float32"),
        default="auto",
        help="TRACER weight storage in the ONNX file (default auto: the smallest that keeps the MAE)",
    )
    p.add_argument("--version", default="1")
    p.add_argument("--force", action="store_true", help="replace an existing set at --out")
    p.add_argument("--log-every", type=int, default=200)
    stargan_training.add_arguments(p, prefix="g-")  # --g-conv-dim, --g-batch, ...
    tracer_training.add_arguments(p, prefix="t-")  # --t-input-size, --t-batch, ...
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    out = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else out.parent
    work.mkdir(parents=True, exist_ok=True)
    handlers = [logging.StreamHandler(), logging.FileHandler(work / "build.log")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers)
    if out.exists() and not args.force:
        raise SystemExit(f"{out} exists; pass --force to replace it")
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    log.info(
        "build: device %s, budget %.0f s, seed %d, torch %s", args.device, args.seconds, args.seed, torch.__version__
    )

    if args.refine_tracer and not args.from_checkpoints:
        raise SystemExit("--refine-tracer continues a finished build: give it --from-checkpoints")
    if args.from_checkpoints:
        generators, t, record = load_checkpoints(Path(args.from_checkpoints).resolve())
        if args.refine_tracer:
            t, record = refine_tracer(t, record, args, work)
            _write_json(work / RECORD, record)
    else:
        generators, t, record = train(args, start + args.seconds, work)
        _write_json(work / RECORD, record)
        try:  # figures before export, so that a failed export still leaves them
            record["quick_metrics"] = quick_metrics(generators, t, args, _resolution(record, args))
            log.info("quick figures (PyTorch): %s", json.dumps(record["quick_metrics"]))
            _write_json(work / RECORD, record)
        except Exception:
            log.exception("quick figures failed; going on to the export")
    missing = [m for m in _training_env.missing() if m in ("onnx", "onnxruntime")]
    if missing:
        log.warning(
            "export deferred: %s not installed here. Checkpoints are in %s; finish with:\n"
            "  python scripts/build_demo_models.py --from-checkpoints %s --out %s",
            ", ".join(missing),
            work / "checkpoints",
            work / "checkpoints",
            out,
        )
        return 0
    metrics = export_and_measure(generators, t, record, args, out)
    record["metrics"] = metrics
    _write_json(work / RECORD, record)
    log.info("wrote %s in %.0f s; figures: %s", out, time.perf_counter() - start, json.dumps(metrics))
    if not all(metrics["meets_targets"].values()):
        log.warning("the set misses targets: %s", {k: v for k, v in metrics["meets_targets"].items() if not v})
    return 0


if __name__ == "__main__":
    sys.exit(main())
