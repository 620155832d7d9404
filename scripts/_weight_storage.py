"""How the demo set's TRACER weights are stored in its ONNX graph: int8 with a per-channel scale
where that costs no held-out accuracy, float16 otherwise (scripts/build_demo_models.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _training_env  # noqa: E402, F401  (the engine on sys.path, stand-ins for missing packages)

if TYPE_CHECKING:
    from faceshield.engine.models.tracer import TRACER


def compress_onnx_weights(data: bytes, mode: str) -> bytes:
    """Store convolution kernels (4-D initializers feeding a Conv) as int8 with a per-output-
    channel scale and a DequantizeLinear node, or as float16 with a Cast node. Computation stays
    float32; every other tensor (biases, the edge module's DFT matrices) is left as it is."""
    if mode == "float32":
        return data
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    conv_weights = {n.input[1] for n in graph.node if n.op_type == "Conv" and len(n.input) > 1}
    keep, new_nodes = [], []
    for init in graph.initializer:
        if init.name not in conv_weights or init.data_type != TensorProto.FLOAT or len(init.dims) != 4:
            keep.append(init)
            continue
        w = numpy_helper.to_array(init).astype(np.float32)
        if mode == "float16":
            keep.append(numpy_helper.from_array(w.astype(np.float16), init.name + "__f16"))
            new_nodes.append(helper.make_node("Cast", [init.name + "__f16"], [init.name], to=TensorProto.FLOAT))
        elif mode == "int8":
            scale = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127.0
            scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
            q = np.clip(np.rint(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
            keep.append(numpy_helper.from_array(q, init.name + "__q"))
            keep.append(numpy_helper.from_array(scale, init.name + "__scale"))
            keep.append(numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), init.name + "__zero"))
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [init.name + "__q", init.name + "__scale", init.name + "__zero"],
                    [init.name],
                    axis=0,
                )
            )
        else:
            raise ValueError(f"unknown weight storage {mode!r}; use float32, float16 or int8")
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)  # the weights exist before any node reads them
    onnx.helper.set_model_props(
        model, {**{p.key: p.value for p in model.metadata_props}, "faceshield.weight_storage": mode}
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


STORAGE_MAE_SLACK = 0.005  # compressed weights may cost at most this much held-out MAE


def choose_weight_storage(t: TRACER, onnx_full: bytes, faces, wanted: str) -> tuple[str, bytes, dict]:
    """ "auto": int8 when its held-out MAE is within `STORAGE_MAE_SLACK` of the PyTorch model's,
    else float16 (half the size of float32, and under the 16 MiB a device run can return).
    TRACER's thresholds (channel quantile, object-attention denoising) are discontinuous, so a
    maximum difference on random inputs says little; the MAE on faces is what counts."""
    from faceshield.engine.saliency import TorchSaliency, TracerSaliency
    from faceshield.engine.synthetic.evaluate import saliency_mae

    check = {"pytorch_mae": saliency_mae(TorchSaliency(t), faces)}
    modes = ("int8", "float16") if wanted == "auto" else (wanted,)
    for mode in modes:
        data = compress_onnx_weights(onnx_full, mode)
        check[f"{mode}_mae"] = saliency_mae(TracerSaliency(data, providers=["CPUExecutionProvider"]), faces)
        if mode == modes[-1] or check[f"{mode}_mae"] <= check["pytorch_mae"] + STORAGE_MAE_SLACK:
            return mode, data, check
    raise AssertionError("unreachable: the last mode is always taken")


# -- stages ----------------------------------------------------------------------------------
