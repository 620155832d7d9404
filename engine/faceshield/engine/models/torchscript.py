"""The generator as a TorchScript artifact (the design card's portable, differentiable format).

TorchScript is deprecated upstream and every `torch.jit` entry point emits a FutureWarning. The
design card keeps it, so the warnings are silenced here, narrowly: only those FutureWarnings,
only around the `torch.jit` calls this module makes.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError

_JIT_DEPRECATION = r"`torch\.jit\.[A-Za-z_]+` is deprecated"
METADATA_FILE = "faceshield.json"


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch.jit's own deprecation FutureWarnings, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATION, category=FutureWarning)
        yield


def trace_generator(model: nn.Module, resolution: int, c_dim: int) -> torch.jit.ScriptModule:
    """Trace G(x, c) at one example shape. Batch size stays dynamic in the trace."""
    model = model.eval()
    x = torch.zeros(2, 3, resolution, resolution)
    c = torch.zeros(2, c_dim)
    with quiet_jit(), torch.no_grad(), warnings.catch_warnings():
        # instance_norm checks that each plane has more than one value; the trace keeps that
        # check as a constant, which is right for any input of this resolution.
        warnings.filterwarnings(
            "ignore", message="Converting a tensor to a Python boolean", category=torch.jit.TracerWarning
        )
        traced = torch.jit.trace(model, (x, c), check_trace=False)
    return traced


def trace_translator(model: nn.Module, resolution: int) -> torch.jit.ScriptModule:
    """Trace an unconditional G(x) at one example shape (batch size and, for these fully
    convolutional networks, resolution stay free in the trace)."""
    model = model.eval()
    x = torch.zeros(2, 3, resolution, resolution)
    with quiet_jit(), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Converting a tensor to a Python boolean", category=torch.jit.TracerWarning
        )
        return torch.jit.trace(model, (x,), check_trace=False)


def save_generator(module: torch.jit.ScriptModule, path: str | Path, metadata: dict) -> None:
    with quiet_jit():
        torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def generator_to_bytes(module: torch.jit.ScriptModule, metadata: dict) -> bytes:
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(module, buffer, _extra_files={METADATA_FILE: json.dumps(metadata)})
    return buffer.getvalue()


def load_generator_artifact(source: str | Path | bytes) -> tuple[torch.jit.ScriptModule, dict]:
    """Load a TorchScript generator and the metadata saved beside it."""
    extra = {METADATA_FILE: ""}
    try:
        with quiet_jit():
            if isinstance(source, bytes):
                module = torch.jit.load(io.BytesIO(source), map_location="cpu", _extra_files=extra)
            else:
                module = torch.jit.load(str(source), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelLoadError(
            f"not a loadable TorchScript generator ({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from None
    try:
        metadata = json.loads(extra[METADATA_FILE] or "{}")
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"TorchScript generator carries unreadable metadata: {exc}") from None
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, metadata
