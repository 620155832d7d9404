"""The TorchScript artifact: same outputs and input gradients as the eager generator."""

import warnings

import torch

from faceshield.engine.models.torchscript import (
    generator_to_bytes,
    load_generator_artifact,
    trace_generator,
)


def test_traced_generator_matches_eager_values_and_gradients(generator):
    traced = trace_generator(generator, resolution=32, c_dim=5)
    blob = generator_to_bytes(traced, {"resolution": 32, "attributes": ["a"] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the jit deprecation notices stay silenced
        loaded, meta = load_generator_artifact(blob)
    assert meta["resolution"] == 32
    torch.manual_seed(0)
    for n in (1, 3):  # batch size is dynamic in the trace
        x = (torch.rand(n, 3, 32, 32) * 2 - 1).requires_grad_(True)
        x2 = x.detach().clone().requires_grad_(True)
        c = torch.rand(n, 5).round()
        y = torch.rand(n, 3, 32, 32) * 2 - 1
        (ge,) = torch.autograd.grad((generator(x, c) - y).pow(2).mean(), x)
        (gs,) = torch.autograd.grad((loaded(x2, c) - y).pow(2).mean(), x2)
        torch.testing.assert_close(gs, ge, atol=1e-7, rtol=1e-4)
        assert ge.abs().sum() > 0


def test_unloadable_artifact_is_a_model_load_error():
    import pytest

    from faceshield.engine.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="TorchScript"):
        load_generator_artifact(b"PK\x03\x04 definitely not a model")
