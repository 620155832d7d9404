"""The transfer stages (attack/transfer.py): TI-FGSM's smoothing, the coarse (block) step and
MI-FGSM's momentum, checked step for step against the updates written out here, and off by default."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from faceshield.engine import AttackConfig, Protector, create_labels
from faceshield.engine.attack.batch import Group
from faceshield.engine.attack.transfer import accumulate, coarsen, smooth, smoothing_kernel
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import to_tensor
from faceshield.engine.ops.geometry import Box
from tests.helpers import ATTRS, tiny_generator


def gaussian_2d(sigma: float, kernel: int) -> torch.Tensor:
    """Dong et al.'s TI kernel, written from the formula: a normalised 2-D Gaussian."""
    r = (kernel - 1) / 2
    w = torch.tensor(
        [[math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma**2)) for j in range(kernel)] for i in range(kernel)]
    )
    return w / w.sum()


def block_means(grad: torch.Tensor, block: int) -> torch.Tensor:
    """Each block x block block of every plane replaced by its mean, block by block."""
    out = grad.clone()
    h, w = grad.shape[-2:]
    for top in range(0, h, block):
        for left in range(0, w, block):
            cell = grad[..., top : top + block, left : left + block]
            out[..., top : top + block, left : left + block] = cell.mean(dim=(-2, -1), keepdim=True)
    return out


def reference(g, x, c, start, steps, a, eps, mu=0.0, sigma=0.0, block=0):
    """(TI-)(MI-)FGSM on MSE(G(x), G(I)) from a given start: smooth the gradient (depthwise 2-D
    convolution, zero padding), average it over blocks, accumulate v = mu v + grad / mean|grad|,
    step a * sign(v), project."""
    with torch.no_grad():
        y = g(x, c)
    xk, v = start.clone(), torch.zeros_like(x)
    k = smoothing_kernel(sigma) if sigma > 0 else 1
    w = gaussian_2d(sigma, k)[None, None].expand(3, 1, k, k) if sigma > 0 else None
    for _ in range(steps):
        xk.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.mse_loss(g(xk, c), y), xk)
        if w is not None:
            grad = F.conv2d(grad, w, padding=k // 2, groups=3)
        if block > 1:
            grad = block_means(grad, block)
        if mu > 0:
            v = mu * v + grad / grad.abs().mean()
            grad = v
        xk = (x + (xk.detach() + a * grad.sign() - x).clamp(-eps, eps)).clamp(-1, 1)
    return xk


@pytest.fixture(scope="module")
def setup(portrait):
    g = tiny_generator(conv_dim=8, repeat_num=6)
    x = to_tensor(portrait)[None]
    labels = create_labels(torch.zeros(1, 5), ATTRS, ["Blond_Hair"])
    return Protector.for_generator(g, ATTRS, 128), g, x, labels


@pytest.mark.parametrize(("mu", "sigma"), [(1.0, 0.0), (0.0, 2.0), (0.9, 1.5)])
def test_pgd_with_transfer_stages_equals_the_papers_update(setup, mu, sigma):
    p, g, x, labels = setup
    cfg = AttackConfig.for_method("pgd", steps=6, seed=3, momentum=mu, smooth_sigma=sigma)
    ours = p.protect(x, labels, cfg)
    start = x + ours.start[0][None]
    ref = reference(g, x, labels[:, 0], start, 6, cfg.step_size, cfg.epsilon, mu, sigma)
    # the smoothing is separable here (two 1-D passes), the reference one 2-D convolution: a sign
    # may flip where the smoothed gradient is ~0, so compare all but a handful of pixels
    differ = (ours.protected[0] - ref[0]).abs() > 1e-6
    assert float(differ.float().mean()) < 1e-3
    plain = p.protect(x, labels, AttackConfig.for_method("pgd", steps=6, seed=3))
    assert not torch.equal(plain.protected[0], ours.protected[0])  # the stage did something


def test_pgd_with_coarse_steps_equals_the_block_update(setup):
    p, g, x, labels = setup
    cfg = AttackConfig.for_method("pgd", steps=5, seed=3, coarse_block=6)  # 128 px: the last blocks are partial
    ours = p.protect(x, labels, cfg)
    start = x + ours.start[0][None]
    ref = reference(g, x, labels[:, 0], start, 5, cfg.step_size, cfg.epsilon, block=6)
    differ = (ours.protected[0] - ref[0]).abs() > 1e-6
    assert float(differ.float().mean()) < 1e-3  # a sign may flip where a block's mean is ~0
    plain = p.protect(x, labels, AttackConfig.for_method("pgd", steps=5, seed=3))
    assert not torch.equal(plain.protected[0], ours.protected[0])


def test_coarsening_averages_each_block_partial_ones_included():
    grad = torch.randn(2, 3, 10, 13)
    torch.testing.assert_close(coarsen(grad, 4), block_means(grad, 4))
    assert coarsen(grad, 1) is grad and coarsen(grad, 0) is grad


def test_stages_are_off_by_default():
    cfg = AttackConfig.for_method("identity")
    assert cfg.momentum == 0.0 and cfg.smooth_sigma == 0.0 and cfg.coarse_block == 0
    grad = torch.randn(2, 3, 16, 16)
    assert smooth(grad, 0.0) is grad


def test_smoothing_spreads_an_impulse_as_a_gaussian():
    grad = torch.zeros(1, 3, 41, 41)
    grad[0, :, 20, 20] = 1.0
    out = smooth(grad, 3.0)
    assert out.sum().item() == pytest.approx(3.0, abs=1e-4)  # mass kept (far from the borders)
    k = smoothing_kernel(3.0)
    want = gaussian_2d(3.0, k)
    r = k // 2
    torch.testing.assert_close(out[0, 1, 20 - r : 21 + r, 20 - r : 21 + r], want, atol=1e-6, rtol=1e-4)


def test_momentum_normalises_and_accumulates():
    g1 = torch.full((2, 3, 4, 4), 2.0)
    g1[1] = -0.5
    v = accumulate(None, g1, 0.9)
    torch.testing.assert_close(v, torch.sign(g1))  # each image divided by its own mean |grad|
    g2 = torch.ones(2, 3, 4, 4) * 4.0
    torch.testing.assert_close(accumulate(v, g2, 0.9), 0.9 * v + 1.0)
    zero = accumulate(None, torch.zeros(1, 3, 4, 4), 1.0)
    assert torch.isfinite(zero).all() and not zero.any()


def test_group_keeps_each_images_velocity():
    g = Group([4, 7, 9], (Box(0, 0, 8, 8),), torch.zeros(3, 3, 8, 8), [0, 0, 0])
    g.velocity = torch.arange(3.0)[:, None, None, None].expand(3, 3, 8, 8)
    kept = g.keep([0, 2])
    assert kept.index == [4, 9]
    assert kept.velocity is not None and kept.velocity[:, 0, 0, 0].tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("momentum", -0.1),
        ("momentum", float("nan")),
        ("smooth_sigma", 21.0),
        ("coarse_block", 65),
        ("coarse_block", 2.0),
    ],
)
def test_out_of_range_stage_settings_are_refused_by_name(field, value):
    with pytest.raises(InvalidInputError) as e:
        AttackConfig.for_method("identity", **{field: value})
    assert e.value.field == field
