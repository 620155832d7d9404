"""`faceshield models list|import|verify`: the installed model sets, and making new ones from
official checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceshield.engine.errors import ModelLoadError

# Nothing heavy at module level (see cli/main.py): `models list` reads manifests, and the model
# code (PyTorch, ONNX) is imported by the actions that need it.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, import and verify model sets", description=__doc__)
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    ls = msub.add_parser("list", help="installed model sets and their manifests' figures")
    ls.add_argument("--json", action="store_true", help="print the manifests as JSON")
    ls.set_defaults(func=run_list)

    imp = msub.add_parser(
        "import",
        help="make a model set from official StarGAN and TRACER checkpoints",
        description="Turn an official StarGAN generator checkpoint (e.g. 200000-G.ckpt) and an official "
        "TRACER-Efficient-N.pth into a model set: TorchScript generator and ONNX TRACER, each "
        "checked against the PyTorch model, plus a manifest with their hashes.",
    )
    imp.add_argument("--generator", required=True, metavar="CKPT", help="StarGAN generator checkpoint (*-G.ckpt)")
    imp.add_argument(
        "--attributes",
        help="the generator's attribute names in label order, comma-separated (default: the CelebA five "
        "of the official checkpoints, Black_Hair,Blond_Hair,Brown_Hair,Male,Young)",
    )
    imp.add_argument(
        "--resolution", type=int, default=128, help="the generator's image size (default 128; 256 for the 256 release)"
    )
    imp.add_argument(
        "--tracer",
        metavar="PTH",
        help="TRACER checkpoint (TRACER-Efficient-N.pth); without it the set has no saliency model",
    )
    imp.add_argument("--tracer-variant", metavar="TE-N", help="TRACER variant (default: read from the file name)")
    imp.add_argument("--tracer-size", type=int, help="TRACER input size (default: the variant's, e.g. 320 for TE-0)")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--name", help="install under this name in the user models directory")
    where.add_argument("--output", metavar="DIR", help="write the set to this directory (its name is the directory's)")
    imp.add_argument(
        "--no-torch-saliency",
        action="store_true",
        help="store TRACER as ONNX only (default: also its PyTorch weights, float16, so that a GPU "
        "machine without onnxruntime-gpu runs it on the GPU)",
    )
    imp.add_argument("--version", default="1", help="version recorded in the manifest (default 1)")
    imp.add_argument("--force", action="store_true", help="replace an existing set of that name")
    imp.set_defaults(func=run_import)

    ver = msub.add_parser("verify", help="check a set's files against its manifest and load it")
    ver.add_argument("set", metavar="PATH_OR_NAME")
    ver.set_defaults(func=run_verify)


def run_list(args: argparse.Namespace) -> int:
    from faceshield.engine.repository import iter_model_sets, search_paths

    sets = iter_model_sets()
    if args.json:
        out = []
        for path, m in sets:
            item = {"path": str(path)}
            item.update({"error": str(m)} if isinstance(m, ModelLoadError) else json.loads(m.to_json()))
            out.append(item)
        print(json.dumps(out, indent=2))
        return 0
    if not sets:
        print("no model sets installed; searched: " + ", ".join(str(p) for p in search_paths()))
        return 0
    seen = set()
    for path, m in sets:
        if isinstance(m, ModelLoadError):
            print(f"{path.name:<16} UNREADABLE  {m}")
            continue
        shadowed = " (shadowed)" if m.name in seen else ""
        seen.add(m.name)
        sal = f"TRACER {m.saliency.parameters.get('variant', '?')}" if m.saliency else "no saliency"
        if m.saliency_torch is not None:
            sal += " (ONNX + PyTorch weights)"
        g = m.generator.parameters
        print(
            f"{m.name:<16} v{m.version}{shadowed}  {m.resolution}px  StarGAN conv_dim={g.get('conv_dim')} "
            f"repeat_num={g.get('repeat_num')}  {sal}  {'trained' if m.trained else 'UNTRAINED'}"
        )
        print(f"{'':<16} attributes: {', '.join(m.attributes)}")
        for line in _figures(m.metrics):
            print(f"{'':<16} {line}")
        print(f"{'':<16} {path}")
    return 0


def _figures(metrics: dict) -> list[str]:
    """The headline numbers of a manifest's `metrics`, one line each."""
    lines = []
    edit = metrics.get("edit_accuracy")
    if isinstance(edit, dict) and "overall" in edit:
        lines.append(f"edits hit their target: {edit['overall']:.1%} (held-out synthetic faces)")
    if "saliency_mae" in metrics:
        lines.append(f"saliency MAE: {metrics['saliency_mae']:.4f}")
    prot = metrics.get("protection")
    if isinstance(prot, dict):
        parts = []
        for method in ("union-saliency", "pgd", "uniform-noise"):
            r = prot.get(method)
            if isinstance(r, dict) and "success_rate" in r:
                psnr = f", PSNR {r['psnr']:.2f} dB" if "psnr" in r else ""
                parts.append(f"{method} {r['success_rate']:.1%}{psnr}")
        if parts:
            lines.append(f"protection success (eps {prot.get('epsilon', '?')}): " + "; ".join(parts))
    return lines


def run_import(args: argparse.Namespace) -> int:
    from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES
    from faceshield.engine.repository import import_official, read_manifest

    dest = Path(args.output) if args.output else None
    name = args.name or (dest.name if dest else None)
    path = import_official(
        generator_checkpoint=args.generator,
        attributes=args.attributes.split(",") if args.attributes else list(CELEBA_DEFAULT_ATTRIBUTES),
        resolution=args.resolution,
        tracer_checkpoint=args.tracer,
        tracer_variant=args.tracer_variant,
        tracer_input_size=args.tracer_size,
        name=name,
        version=args.version,
        dest=dest,
        overwrite=args.force,
        torch_saliency=not args.no_torch_saliency,
    )
    m = read_manifest(path)
    print(f"wrote model set {m.name} to {path}")
    checks = m.produced_by.get("checks", {})
    print(
        f"  generator: StarGAN {m.generator.parameters}, {m.resolution}px, TorchScript matches eager (max diff {checks.get('torchscript_max_diff', float('nan')):.1e})"
    )
    if m.saliency:
        print(
            f"  saliency: TRACER {m.saliency.parameters}, ONNX matches PyTorch (max diff {checks.get('onnx_max_diff', float('nan')):.1e})"
        )
    else:
        print("  saliency: none (pass --tracer for the saliency-aware and union-saliency methods)", file=sys.stderr)
    use = args.name or str(path)
    print(f"use it: faceshield protect face.png -o protected.png --models {use}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from faceshield.engine.repository import load_model_set, resolve, verify_model_set

    m = verify_model_set(args.set)
    load_model_set(args.set)
    print(f"{m.name} v{m.version} at {resolve(args.set)}: {len(m.components)} files match the manifest; loads")
    return 0
