"""Separable filters (blur per step, SSIM windows) against a plain 2-D depthwise convolution, on
both of their code paths: banded-matrix products (small images) and 1-D convolutions (large)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceshield.engine.ops import filters
from faceshield.engine.ops.filters import Blur, box_blur, gaussian_blur, separable_filter


def reference(x: torch.Tensor, taps: torch.Tensor, valid: bool) -> torch.Tensor:
    k = taps.numel()
    w = torch.outer(taps, taps).to(x.dtype).expand(x.shape[1], 1, k, k)
    return F.conv2d(x, w, padding=0 if valid else k // 2, groups=x.shape[1])


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 5, 40, 70), (1, 2, 200, 230)])  # last: conv path
@pytest.mark.parametrize("valid", [False, True])
@pytest.mark.parametrize("taps", [filters._gaussian_1d(11, 1.0), filters._gaussian_1d(11, 1.5), torch.full((5,), 0.2)])
def test_separable_filter_equals_the_2d_convolution(shape, valid, taps):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = separable_filter(x, taps, valid=valid)
    assert out.shape == reference(x, taps, valid).shape
    assert torch.allclose(out, reference(x, taps, valid), atol=1e-12)


def test_both_paths_agree_and_keep_gradients(monkeypatch):
    x = torch.rand(2, 3, 48, 48, dtype=torch.float64, requires_grad=True)
    taps = filters._gaussian_1d(11, 1.0).double()
    (g_matmul,) = torch.autograd.grad(separable_filter(x, taps).pow(2).sum(), x)
    monkeypatch.setattr(filters, "MATMUL_MAX_SIDE", 0)
    (g_conv,) = torch.autograd.grad(separable_filter(x, taps).pow(2).sum(), x)
    assert torch.allclose(g_matmul, g_conv, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda t: separable_filter(t, taps), (x[:1, :1, :16, :16].detach().requires_grad_(),)
    )


def test_blurs_keep_size_and_mean_away_from_borders():
    x = torch.rand(1, 3, 128, 128)
    for blur in (gaussian_blur(x, 11, 1.0), box_blur(x, 7), Blur("box", 9)(x), Blur("gaussian", 11, 2.0)(x)):
        assert blur.shape == x.shape and blur.dtype == x.dtype
        inner = (slice(None), slice(None), slice(20, -20), slice(20, -20))
        assert abs(blur[inner].mean().item() - x[inner].mean().item()) < 2e-3
    flat = torch.full((1, 1, 32, 32), 0.5)
    assert torch.allclose(box_blur(flat, 5)[..., 2:-2, 2:-2], flat[..., 2:-2, 2:-2])
