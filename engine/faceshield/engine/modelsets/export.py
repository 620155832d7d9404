"""Turning PyTorch models into a set's served artifacts, each checked against its source.

Generators become TorchScript (the design card's differentiable format) and are checked for
equal outputs *and input gradients*, since the attack lives on those gradients; TRACER becomes
ONNX and is checked through ONNX Runtime.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import InvalidInputError, ModelLoadError
from ..models.torchscript import generator_to_bytes, load_generator_artifact, trace_generator, trace_translator
from ..models.victims import Unconditional

TORCHSCRIPT_TOLERANCE = 1e-4
ONNX_TOLERANCE = 2e-3


def check_torchscript(
    eager: Callable, scripted: Callable, resolution: int, c_dim: int, seed: int = 0, what: str = "generator"
) -> float:
    """Max |eager - TorchScript| over outputs and (relative) input gradients on random inputs,
    both called as G(x, c); raises `ModelLoadError` above `TORCHSCRIPT_TOLERANCE`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, resolution, resolution, generator=g) * 2 - 1
    c = (torch.rand(2, c_dim, generator=g) > 0.5).float()
    outs, grads = [], []
    for model in (eager, scripted):
        xi = x.clone().requires_grad_(True)
        y = model(xi, c)
        (grad,) = torch.autograd.grad(y.square().sum(), xi)
        outs.append(y.detach())
        grads.append(grad)
    worst = max(
        float((outs[0] - outs[1]).abs().max()),
        float((grads[0] - grads[1]).abs().max() / grads[0].abs().max().clamp_min(1e-12)),
    )
    if not worst <= TORCHSCRIPT_TOLERANCE:
        raise ModelLoadError(
            f"the TorchScript {what} differs from the eager one by {worst:.2e} "
            f"(tolerance {TORCHSCRIPT_TOLERANCE:g}); not writing the set"
        )
    return worst


def export_generator(
    generator: nn.Module, resolution: int, attributes: Sequence[str], metadata: dict | None = None
) -> tuple[bytes, float]:
    """Trace a StarGAN, check it against the eager model (also after a save/load round trip);
    return the TorchScript bytes and the worst difference seen."""
    c_dim = len(attributes)
    traced = trace_generator(generator, resolution, c_dim)
    meta = {"architecture": "stargan", "resolution": resolution, "attributes": list(attributes)}
    meta.update(metadata or {})
    data = generator_to_bytes(traced, meta)
    reloaded, _ = load_generator_artifact(data)
    worst = max(
        check_torchscript(generator, traced, resolution, c_dim),
        check_torchscript(generator, reloaded, resolution, c_dim, seed=1),
    )
    return data, worst


def export_translator(translator: nn.Module, resolution: int, metadata: dict | None = None) -> tuple[bytes, float]:
    """Trace an unconditional translator G(x), check outputs and input gradients against the eager
    model (also after a save/load round trip); return the TorchScript bytes and the worst
    difference seen."""
    traced = trace_translator(translator, resolution)
    meta = {"architecture": "translator", "resolution": resolution}
    meta.update(metadata or {})
    data = generator_to_bytes(traced, meta)
    reloaded, _ = load_generator_artifact(data)
    eager = Unconditional(translator)
    worst = max(
        check_torchscript(eager, Unconditional(traced), resolution, 0, what="translator"),
        check_torchscript(eager, Unconditional(reloaded), resolution, 0, seed=1, what="translator"),
    )
    return data, worst


def check_declared_module(module: torch.jit.ScriptModule, kind: str, resolution: int, c_dim: int, what: str) -> None:
    """A user's TorchScript module must take what its declared kind takes and give back an image:
    G(x) (translator) or G(x, c) (stargan), (N, 3, R, R) -> (N, 3, R, R). `InvalidInputError`
    (field "torchscript") says which part does not fit."""
    x = torch.zeros(2, 3, resolution, resolution)
    args = (x,) if kind == "translator" else (x, torch.zeros(2, c_dim))
    try:
        with torch.no_grad():
            y = module(*args)
    except Exception as exc:
        signature = "G(x)" if kind == "translator" else f"G(x, c) with c of {c_dim} labels"
        raise InvalidInputError(
            "torchscript",
            f"{what} does not run as a {kind} ({signature}) at {resolution}x{resolution}: "
            f"{exc.__class__.__name__}: {str(exc)[:200]}",
        ) from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise InvalidInputError(
            "torchscript",
            f"{what} returns {shape}; a victim must return an image of its input's shape {tuple(x.shape)}",
        )


def check_onnx(reference: Callable, onnx_runner: Callable, input_size: int, seed: int = 0) -> float:
    """Max |PyTorch - ONNX| saliency on random image-like inputs at the model's input size;
    raises `ModelLoadError` above `ONNX_TOLERANCE`.

    The inputs are smooth (8x8 noise upsampled): per-pixel iid noise pushes a trained TRACER's
    top-k attention selection into near-ties, where a float32 rounding difference between the two
    runtimes flips which pixels are picked (seen: 2e-2 on 0.4% of pixels of a trained TE-0, while
    it agreed to 4e-6 on faces and on smooth inputs)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 3, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(input_size, input_size), mode="bilinear", align_corners=False)
    worst = float((reference(x).float() - onnx_runner(x).float()).abs().max())
    if not worst <= ONNX_TOLERANCE:
        raise ModelLoadError(
            f"the ONNX TRACER differs from the PyTorch one by {worst:.2e} "
            f"(tolerance {ONNX_TOLERANCE:g}); not writing the set"
        )
    return worst


def tracer_state_bytes(tracer) -> bytes:
    """TRACER's state dict, floating tensors as float16 (half the size; the maps it computes
    differ from float32's by about 1e-3), as `torch.save` bytes."""
    from ..models.tracer import half_state_dict

    buffer = io.BytesIO()
    torch.save(half_state_dict(tracer), buffer)
    return buffer.getvalue()


def export_saliency(tracer, metadata: dict | None = None) -> tuple[bytes, float]:
    """ONNX bytes of a PyTorch TRACER, checked against it through ONNX Runtime (CPU)."""
    from ..models.tracer import export_onnx
    from ..saliency import TorchSaliency, TracerSaliency

    data = export_onnx(tracer, metadata=metadata)
    worst = check_onnx(
        TorchSaliency(tracer), TracerSaliency(data, providers=["CPUExecutionProvider"]), tracer.input_size
    )
    return data, worst
