"""TRACER exported to ONNX: same numbers as PyTorch, dynamic batch, deterministic, plain ops."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from faceshield.engine.models.tracer import SaliencyGraph, build_tracer, export_onnx


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Random images with structure at every scale (not only white noise), in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(size, size), mode="bilinear")
    return (0.8 * coarse + 0.2 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def te0():
    """TE-0 at its official input size 320, random weights, calibrated statistics."""
    model = build_tracer("TE-0", seed=7, calibrate=True)
    assert model.input_size == 320
    return model


@pytest.fixture(scope="module")
def te0_onnx(te0):
    return export_onnx(te0)


@pytest.fixture(scope="module")
def session(te0_onnx):
    return ort.InferenceSession(te0_onnx, providers=["CPUExecutionProvider"])


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 4])
def test_onnx_matches_pytorch(te0, session, batch):
    x = smooth_images(batch, 320, seed=batch)
    x[-1] = torch.rand(3, 320, 320)  # and one white-noise image
    with torch.no_grad():
        want = SaliencyGraph(te0)(x).numpy()
    (got,) = session.run(None, {"image": x.numpy()})
    assert got.shape == (batch, 1, 320, 320) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4
    # The comparison means something only if the map is not a saturated constant.
    assert ((want > 0.02) & (want < 0.98)).mean() > 0.2


def test_batch_axis_is_dynamic(te0_onnx):
    model = onnx.load_from_string(te0_onnx)
    (inp,), (out,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[1:] == [3, 320, 320]
    assert out.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_graph_uses_only_standard_onnx_ops(te0_onnx):
    """No FFT (DFT), no custom domains: the parts that did not export are plain matrix ops."""
    model = onnx.load_from_string(te0_onnx)
    ops = {n.op_type for n in model.graph.node}
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert not ops & {"DFT", "STFT"}
    assert "TopK" in ops and "MatMul" in ops  # the quantile and the DFT-matrix high-pass
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["faceshield.variant"] == "TE-0" and meta["faceshield.input_size"] == "320"


@pytest.mark.slow
def test_export_is_deterministic_quiet_and_writes_the_file(tmp_path):
    model = build_tracer("TE-0", seed=1, input_size=64)
    path = tmp_path / "tracer.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = export_onnx(model, path, metadata={"faceshield.trained": "false"})
        second = export_onnx(model, metadata={"faceshield.trained": "false"})
    assert first == second == path.read_bytes()
    noisy = [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert not noisy, [str(w.message)[:120] for w in noisy]
    meta = {p.key: p.value for p in onnx.load_from_string(first).metadata_props}
    assert meta["faceshield.trained"] == "false" and meta["faceshield.input_size"] == "64"
