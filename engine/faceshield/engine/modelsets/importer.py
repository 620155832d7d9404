"""Making a model set from checkpoints: StarGAN, translators, a user's TorchScript, TRACER.

Every victim is loaded strictly (a checkpoint that does not fit is refused naming its keys),
turned into TorchScript and checked against the eager model, outputs and input gradients; TRACER
is exported to ONNX and checked through ONNX Runtime. Nothing is written until every check has
passed, and then atomically (`store.write_model_set`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, ModelLoadError
from ..models.labels import CELEBA_DEFAULT_ATTRIBUTES
from .export import check_declared_module, export_generator, export_saliency, export_translator, tracer_state_bytes
from .manifest import (
    NAME_PATTERN,
    SALIENCY_FILE,
    SALIENCY_TORCH_FILE,
    VictimFile,
    build_manifest,
    sha256_bytes,
    sha256_file,
)
from .store import ModelSetWriteError, user_models_dir, write_model_set

log = logging.getLogger(__name__)

_TRACER_FILE = re.compile(r"TRACER-Efficient-(\d)", re.IGNORECASE)


@dataclass(frozen=True)
class TranslatorCheckpoint:
    """A CycleGAN/pix2pix generator's state dict to import as the victim `name` at `resolution`."""

    name: str
    path: Path
    resolution: int
    data: bytes | None = None  # the checkpoint's bytes where it was read elsewhere (a published wheel)


@dataclass(frozen=True)
class DeclaredTorchScript:
    """A user's own TorchScript generator whose kind they declare: G(x) for "translator", G(x, c)
    with c of len(attributes) labels for "stargan"."""

    name: str
    path: Path
    kind: str
    resolution: int
    attributes: Sequence[str] = ()


def tracer_variant_from_name(path: str | Path) -> str | None:
    """ "TRACER-Efficient-5.pth" -> "TE-5" (None when the name does not say)."""
    m = _TRACER_FILE.search(Path(path).name)
    return f"TE-{m.group(1)}" if m else None


def _source(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path)}


def stargan_victim(
    checkpoint: str | Path, attributes: Sequence[str], resolution: int, name: str = "stargan"
) -> tuple[VictimFile, float]:
    from ..models.stargan import load_generator

    path = Path(checkpoint)
    generator = load_generator(path, c_dim=len(attributes))  # strict: names the keys that do not fit
    arch = {"conv_dim": generator.conv_dim, "c_dim": generator.c_dim, "repeat_num": generator.repeat_num}
    data, diff = export_generator(generator, resolution, attributes)
    log.info("generator %s: %s, TorchScript matches (max diff %.1e)", path.name, arch, diff)
    return VictimFile(name, "stargan", resolution, data, "stargan", arch, list(attributes), _source(path)), diff


def translator_victim(source: TranslatorCheckpoint, state: dict | None = None) -> tuple[VictimFile, float]:
    """A translator checkpoint (or its already-read `state`), strictly loaded and exported."""
    from ..models.stargan import load_state_dict_file
    from ..models.translator import load_translator

    what = f"translator checkpoint {source.path.name}"
    if state is None and source.data is not None:
        state = _state_from_bytes(source.data, what)
    state = load_state_dict_file(source.path) if state is None else state
    translator = load_translator(state, what)
    spec = translator.spec
    spec.check_resolution(source.resolution, field="resolution")
    data, diff = export_translator(translator, source.resolution, {"faceshield.source": source.path.name})
    log.info("translator %s: %s, TorchScript matches (max diff %.1e)", source.name, spec, diff)
    victim = VictimFile(
        source.name,
        "translator",
        source.resolution,
        data,
        spec.architecture,
        spec.as_dict(),
        source=_source(source.path)
        if source.data is None
        else {"file": source.path.name, "sha256": sha256_bytes(source.data)},
    )
    return victim, diff


def _state_from_bytes(data: bytes, what: str) -> dict:
    import io

    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{what} is not a readable PyTorch checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{what} does not hold a state dict of tensors")
    return state


def declared_victim(source: DeclaredTorchScript) -> VictimFile:
    from ..models.torchscript import load_generator_artifact

    if source.kind not in ("stargan", "translator"):
        raise InvalidInputError(
            "kind", f"declare the TorchScript module's kind: stargan or translator, not {source.kind!r}"
        )
    if not source.path.is_file():
        raise ModelLoadError(f"TorchScript file {source.path} does not exist or is not a file")
    data = source.path.read_bytes()
    module, _ = load_generator_artifact(data)
    attributes = list(source.attributes) if source.kind == "stargan" else []
    check_declared_module(module, source.kind, source.resolution, len(attributes), source.path.name)
    return VictimFile(
        source.name, source.kind, source.resolution, data, "torchscript", {}, attributes, _source(source.path)
    )


def import_official(
    *,
    name: str | None,
    generator_checkpoint: str | Path | None = None,
    attributes: Sequence[str] = CELEBA_DEFAULT_ATTRIBUTES,
    resolution: int = 128,
    translators: Sequence[TranslatorCheckpoint] = (),
    torchscripts: Sequence[DeclaredTorchScript] = (),
    tracer_checkpoint: str | Path | None = None,
    tracer_variant: str | None = None,
    tracer_input_size: int | None = None,
    version: str = "1",
    dest: str | Path | None = None,
    overwrite: bool = False,
    torch_saliency: bool = True,
) -> Path:
    """Turn checkpoints into a model set at `dest` (default: the user models directory / name):
    an official StarGAN `*-G.ckpt` (victim "stargan"), any number of translator checkpoints and
    declared TorchScript modules, and optionally an official `TRACER-Efficient-N.pth`.
    `torch_saliency` also stores TRACER's weights for PyTorch (float16), so that a GPU machine
    without onnxruntime-gpu can run it on the GPU."""
    if name is None or not NAME_PATTERN.match(name):
        raise InvalidInputError("name", f"{name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if generator_checkpoint is None and not translators and not torchscripts:
        raise InvalidInputError("generator", "name at least one victim: --generator, --translator or --torchscript")
    attributes = [a.strip() for a in attributes if a.strip()]
    if generator_checkpoint is not None and (not attributes or len(set(attributes)) != len(attributes)):
        raise InvalidInputError("attributes", "name each attribute of the generator once, comma-separated")
    declared: list[TranslatorCheckpoint | DeclaredTorchScript] = [*translators, *torchscripts]
    names = (["stargan"] if generator_checkpoint is not None else []) + [t.name for t in declared]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError("name", f"each victim needs its own name; named twice: {', '.join(twice)}")
    for n in names:
        if not NAME_PATTERN.match(n) or "/" in n:
            raise InvalidInputError("name", f"victim name {n!r} must be 1-64 letters, digits, '.', '_' or '-'")
    for r in [resolution] + [t.resolution for t in declared]:
        if r < 8 or r % 4:
            raise InvalidInputError("resolution", f"must be a multiple of 4, got {r}")
    dest = Path(dest) if dest is not None else user_models_dir() / name
    if dest.exists() and not overwrite:
        raise ModelSetWriteError(f"{dest} already exists; choose another name or pass --force to replace it")

    victims: list[VictimFile] = []
    checks: dict[str, float] = {}
    if generator_checkpoint is not None:
        victim, checks["torchscript_max_diff"] = stargan_victim(generator_checkpoint, attributes, resolution)
        victims.append(victim)
    for t in translators:
        victim, checks[f"torchscript_max_diff.{t.name}"] = translator_victim(t)
        victims.append(victim)
    victims += [declared_victim(t) for t in torchscripts]
    if "torchscript_max_diff" not in checks and len(checks):
        checks["torchscript_max_diff"] = max(checks.values())
    sources = [v.source for v in victims]

    sal_bytes, sal_params, sal_source, sal_torch_bytes = None, None, None, None
    if tracer_checkpoint is not None:
        from ..models.tracer import load_tracer

        tpath = Path(tracer_checkpoint)
        variant = tracer_variant or tracer_variant_from_name(tpath)
        if variant is None:
            raise InvalidInputError(
                "tracer_variant", f"cannot tell the TRACER variant from {tpath.name!r}; name it (TE-0..TE-7)"
            )
        tracer = load_tracer(tpath, variant, input_size=tracer_input_size)
        sal_bytes, checks["onnx_max_diff"] = export_saliency(tracer, metadata={"faceshield.source": tpath.name})
        sal_params = {"variant": tracer.variant.name, "input_size": tracer.input_size}
        sal_source = _source(tpath)
        sources.append(sal_source)
        log.info("TRACER %s: ONNX matches (max diff %.1e)", tracer.variant.name, checks["onnx_max_diff"])
        if torch_saliency:
            sal_torch_bytes = tracer_state_bytes(tracer)

    described = ", ".join(f"{v.kind} {v.name} ({v.source['file']})" for v in victims)
    manifest = build_manifest(
        name=name,
        version=version,
        victims=victims,
        saliency_bytes=sal_bytes,
        saliency_parameters=sal_params,
        saliency_source=sal_source,
        produced_by={"tool": "faceshield models import", "sources": sources, "checks": checks},
        trained=True,
        description=described + (f" + {Path(tracer_checkpoint).name}" if tracer_checkpoint else ""),
        saliency_torch_bytes=sal_torch_bytes,
    )
    files = {entry.file: v.data for entry, v in zip(manifest.victims, victims, strict=True)}
    if sal_bytes is not None:
        files[SALIENCY_FILE] = sal_bytes
    if sal_torch_bytes is not None:
        files[SALIENCY_TORCH_FILE] = sal_torch_bytes
    assert all(sha256_bytes(files[c.file]) == c.sha256 for c in manifest.components)
    return write_model_set(dest, manifest, files, overwrite=overwrite)


ONNX_PARITY = 1e-5  # the style network read into PyTorch against ONNX Runtime on the same file


def styles_victim(name: str, onnx_bytes: bytes, resolution: int) -> tuple[VictimFile, float]:
    """A conditional style network's ONNX file -> a TorchScript victim G'(x, c) in generator
    space, checked against ONNX Runtime on the file itself (outputs) and against the eager module
    (outputs and input gradients)."""
    from ..models.styles import STYLE_NAMES, StyleVictim, read_style_network

    network = read_style_network(onnx_bytes)
    names = (
        list(STYLE_NAMES[: network.num_styles])
        if network.num_styles <= len(STYLE_NAMES)
        else [f"{i:02d}" for i in range(network.num_styles)]
    )
    worst_onnx = onnx_parity(network, onnx_bytes, min(resolution, 64))
    if not worst_onnx <= ONNX_PARITY:
        raise ModelLoadError(
            f"the style network read into PyTorch differs from ONNX Runtime by {worst_onnx:.2e} "
            f"(tolerance {ONNX_PARITY:g}); not writing the set"
        )
    data, diff = export_generator(StyleVictim(network).eval(), resolution, names, {"architecture": "styles"})
    log.info(
        "style network %s: %d styles, ONNX Runtime parity %.1e, TorchScript %.1e", name, len(names), worst_onnx, diff
    )
    victim = VictimFile(
        name,
        "styles",
        resolution,
        data,
        "styles",
        {"styles": len(names), "onnx_max_diff": worst_onnx},
        names,
        {"sha256": sha256_bytes(onnx_bytes)},
    )
    return victim, max(diff, worst_onnx)


def onnx_parity(network, onnx_bytes: bytes, size: int, styles: Sequence[int] = (0, 7, 19, 25)) -> float:
    """Max |PyTorch - ONNX Runtime| of the style network over a few styles on one smooth random
    image (the ONNX graph takes one image and one (S,) weight vector)."""
    import numpy as np
    import torch

    from ..onnx_runtime import load

    ort = load()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(size, size), mode="bilinear")
    worst = 0.0
    for s in (s for s in styles if s < network.num_styles):
        w = torch.zeros(network.num_styles)
        w[s] = 1
        ref = session.run(None, {"image": image.numpy(), "style_weights": w.numpy()})[0]
        with torch.no_grad():
            out = network(image, w[None]).numpy()
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst
