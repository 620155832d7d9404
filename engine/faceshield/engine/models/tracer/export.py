"""TRACER as an ONNX graph: ImageNet normalization + network + sigmoid, batch axis dynamic.

Graph contract (also written into the model's metadata):
    input  "image":    float32 (N, 3, S, S), RGB in [0, 1], already resized to S = input size
    output "saliency": float32 (N, 1, S, S), sigmoid(final_map) in [0, 1]
Resizing stays outside the graph (the runner does it in PyTorch) so that one graph serves every
image size and the resize filter is the engine's, not the exporter's.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from torch import nn

from ..torchscript import quiet_jit
from .model import TRACER
from .variants import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)
INPUT_NAME = "image"
OUTPUT_NAME = "saliency"
OPSET = 17
IR_VERSION = 8  # ONNX Runtime 1.20+ reads IR 8; newer writers default higher than some runtimes accept


class SaliencyGraph(nn.Module):
    """[0, 1] RGB at the model's input size -> M_sm at the same size (what the ONNX graph holds)."""

    mean: torch.Tensor  # buffers (register_buffer), declared for mypy
    std: torch.Tensor

    def __init__(self, tracer: TRACER):
        super().__init__()
        self.tracer = tracer
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def input_size(self) -> int:
        return self.tracer.input_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.tracer.saliency((image - self.mean) / self.std)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence exactly the legacy exporter's expected warnings: its own deprecation notice, the
    tracer's note that Python-side shape checks become constants (spatial sizes are fixed by
    design; the batch axis is declared dynamic and tested at several sizes), and constant
    folding skipping the reversed-slice pads of asymmetric padding (ONNX Runtime computes them)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"You are using the legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message=r"The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"Constant folding - Only steps=1", category=UserWarning)
        yield


def export_onnx(tracer: TRACER, path: str | Path | None = None, metadata: dict | None = None) -> bytes:
    """Export `tracer` (eval mode) with normalization and sigmoid; return the model bytes and
    write them to `path` when given. Deterministic: the same weights give the same bytes."""
    graph = SaliencyGraph(tracer).eval()
    size = tracer.input_size
    # Batch 1 is enough to trace (the batch axis is declared dynamic; tests run 1 and 4).
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    # The TorchScript-based exporter: about twice as fast as the dynamo one here, deterministic,
    # and a dynamic batch axis by name. Its known, harmless warnings are silenced one by one.
    with quiet_jit(), _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            graph,
            (example,),
            buffer,  # type: ignore[arg-type]  # torch types f as a path; the TorchScript exporter takes a file object too
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = min(model.ir_version, IR_VERSION)
    meta = {
        "faceshield.model": "tracer",
        "faceshield.variant": tracer.variant.name,
        "faceshield.input_size": str(size),
        "faceshield.preprocessing": "input RGB in [0,1] at input_size; ImageNet mean/std inside the graph",
        "faceshield.output": "sigmoid(final_map), (N,1,S,S)",
    }
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    onnx.helper.set_model_props(model, meta)
    data = model.SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
    return data
