"""Saliency runners: ONNX Runtime and PyTorch agree, preprocessing, providers, bad input, and the
embedded default the engine uses for union-saliency."""

from __future__ import annotations

import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from faceshield.engine.errors import InvalidInputError, ModelLoadError
from faceshield.engine.models.tracer import build_tracer, export_onnx
from faceshield.engine.saliency import (
    CPU_PROVIDER,
    DEFAULT_INPUT_SIZE,
    TorchSaliency,
    TracerSaliency,
    build_default_saliency,
)
from tests.helpers import CPU_PRECISION


@pytest.fixture(scope="module")
def tracer():
    # Input 128, not smaller: below about 96 the edge module's radius-16 high-pass removes the
    # whole spectrum of its 1/4-size map, leaving rounding noise that calibrated statistics amplify.
    return build_tracer("TE-0", seed=11, input_size=128, calibrate=True)


@pytest.fixture(scope="module")
def onnx_bytes(tracer):
    return export_onnx(tracer)


@pytest.fixture(scope="module")
def runner(onnx_bytes):
    return TracerSaliency(onnx_bytes)


def images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.slow
def test_output_is_a_map_at_the_input_size(runner):
    out = runner(images(2, 96, 80))
    assert out.shape == (2, 1, 96, 80) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0
    assert runner.input_size == 128 and runner.name == "TRACER TE-0"


def test_onnx_runner_matches_torch_runner(runner, tracer):
    x = images(3, 128, 128, seed=1)
    got, want = runner(x), TorchSaliency(tracer)(x)
    assert (got - want).abs().max().item() < 1e-4


def test_preprocessing_is_resize_then_imagenet_normalization(runner, tracer):
    """At the model's own size the runner is the bare network on ImageNet-normalized input."""
    x = images(2, 128, 128, seed=2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = tracer((x - mean) / std)[0]
    assert (runner(x) - want).abs().max().item() < 1e-4
    # Another size: resized to 128 (bilinear, half-pixel, no antialiasing, as OpenCV's resize in
    # the official pipeline), run, resized back (antialiased when shrinking).
    small = images(1, 80, 80, seed=3)
    big = F.interpolate(small, size=(128, 128), mode="bilinear", align_corners=False)
    with torch.no_grad():
        m = tracer((big - mean) / std)[0]
    want = F.interpolate(m, size=(80, 80), mode="bilinear", align_corners=False, antialias=True)
    assert (runner(small) - want).abs().max().item() < 1e-4


def test_batches_are_split_without_changing_results(onnx_bytes, runner):
    x = images(5, 128, 128, seed=4)
    small_chunks = TracerSaliency(onnx_bytes, max_batch=2)
    assert (small_chunks(x) - runner(x)).abs().max().item() < 1e-5
    assert (runner(x[3:4]) - runner(x)[3:4]).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (torch.rand(2, 1, 32, 32), r"3 \(RGB\) channels"),
        (torch.rand(2, 4, 32, 32), r"3 \(RGB\) channels"),
        (torch.rand(0, 3, 32, 32), "empty batch"),
        (torch.full((1, 3, 32, 32), float("nan")), "finite"),
        (torch.tensor([float("inf")]).expand(1, 3, 8, 8), "finite"),
        (torch.rand(3, 32, 32), "4-D"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "float"),
        (torch.rand(1, 3, 0, 32), "zero size"),
        ([[0.5]], "torch.Tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(runner, tracer, bad, words):
    for r in (runner, TorchSaliency(tracer)):
        with pytest.raises(InvalidInputError, match=words) as err:
            r(bad)
        assert err.value.field == "image"


def test_providers_are_reported_truthfully_and_quietly(onnx_bytes, capfd):
    """onnxruntime-gpu may list CUDA on a machine where it cannot start; the runner then runs on
    CPU without printing onnxruntime's errors, and says so."""
    r = TracerSaliency(onnx_bytes)
    assert r.providers == r.session.get_providers()
    assert r.providers[-1] == CPU_PROVIDER
    if "CUDAExecutionProvider" in r.providers:
        assert r.providers[0] == "CUDAExecutionProvider"
    captured = capfd.readouterr()
    assert "CUDAExecutionProvider" not in captured.err + captured.out
    assert TracerSaliency(onnx_bytes, providers=[CPU_PROVIDER]).providers == [CPU_PROVIDER]
    assert set(r.providers) <= set(ort.get_available_providers())


def test_loads_from_a_path_and_refuses_bad_models(onnx_bytes, tmp_path):
    path = tmp_path / "tracer.onnx"
    path.write_bytes(onnx_bytes)
    assert TracerSaliency(path).input_size == 128
    with pytest.raises(ModelLoadError, match="does not exist"):
        TracerSaliency(tmp_path / "missing.onnx")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX"):
        TracerSaliency(b"not an onnx model")


def test_torch_runner_reports_its_device(tracer):
    r = TorchSaliency(tracer)
    assert r.providers == ["torch:cpu"] and r.input_size == 128 and r.name == "TRACER TE-0"


def test_engine_reports_which_runtime_runs_the_saliency_model(onnx_bytes, tracer):
    """GetModelInfo's Execution.saliency_runtime comes from here."""
    from faceshield.engine.modelset import ModelSet
    from faceshield.engine.pipeline import FaceShieldEngine
    from tests.helpers import ATTRS, tiny_generator

    for saliency, runtime in (
        (TracerSaliency(onnx_bytes), "onnxruntime"),
        (TorchSaliency(tracer), "torch"),
        (lambda x: x[:, :1], "custom"),
        (None, ""),
    ):
        models = ModelSet("t", "0", tiny_generator(), list(ATTRS), 32, saliency=saliency)
        info = FaceShieldEngine(models).info()
        assert (info.saliency_runtime, info.precision) == (runtime, CPU_PRECISION)


@pytest.fixture(scope="module")
def default_saliency():
    return build_default_saliency()


@pytest.mark.slow
def test_default_saliency_is_an_onnx_tracer(default_saliency):
    s = default_saliency
    assert isinstance(s, TracerSaliency)
    assert s.input_size == DEFAULT_INPUT_SIZE
    assert "TE-0" in s.name and "untrained" in s.name
    assert s.metadata["faceshield.trained"] == "false"
    out = s(images(2, 128, 128, seed=5))
    assert out.shape == (2, 1, 128, 128) and out.std() > 0.01


def test_default_saliency_is_reproducible(default_saliency):
    """The same seed gives the same weights: the PyTorch twin computes the same map."""
    from faceshield.engine.saliency import build_default_torch_saliency

    x = images(1, 128, 128, seed=6)
    assert (build_default_torch_saliency()(x) - default_saliency(x)).abs().max().item() < 1e-4


def test_engine_default_models_use_it(default_saliency, monkeypatch):
    from faceshield.engine import saliency
    from faceshield.engine.modelsets import defaults as default_models

    monkeypatch.setattr(saliency, "build_default_saliency", lambda: default_saliency)  # built once
    # The fixed-seed models (build_default_models prefers a bundled trained demo set where one exists).
    build = getattr(default_models, "build_untrained_models", default_models.build_default_models)
    models = build()
    assert models.saliency is default_saliency
    assert models.saliency_name == default_saliency.name
    assert models.providers == default_saliency.providers
