"""Transfer stages: shaping the step direction so that the perturbation carries to generators the
attack never saw (issue 21's "raise transfer"). All are off by default (the paper's I-FGSM).

    smoothing   TI-FGSM (Dong et al., CVPR 2019): the gradient is convolved with a Gaussian of
                `smooth_sigma` pixels (at the image's own resolution) before its sign is taken,
                so the perturbation is built from lower frequencies. A perturbation that a
                model's fine texture filters do not single out is the one other models share.
    coarse      a lower-frequency parameterisation: the step is taken on a grid of
                `coarse_block` x `coarse_block` pixel blocks, as if the perturbation were a
                coarser image enlarged by nearest neighbour. The gradient of such a
                parameterisation is the gradient summed over each block (the adjoint of the
                enlargement), so each block moves as one by the sign of its mean gradient.
                Like TI it keeps the fine texture out of the step, but by construction
                rather than by a blur.
    momentum    MI-FGSM (Dong et al., CVPR 2018): the step follows
                    v <- mu * v + grad / mean|grad|
                per image, and its sign; the accumulated direction is steadier from step to step,
                less fitted to one step's transforms and targets.

Applied in that order (TI-MI-FGSM): smooth, coarsen, then accumulate. The step mask, the epsilon ball and
8-bit rounding apply afterwards as for the plain step (`attack/step.py`). The noise generator's
start is not affected.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops.filters import gaussian_blur


def smoothing_kernel(sigma: float) -> int:
    """An odd kernel covering +-3 sigma (at least 3 taps)."""
    return max(3, 2 * int(round(3 * sigma)) + 1)


def smooth(grad: torch.Tensor, sigma: float) -> torch.Tensor:
    """TI: (N, 3, H, W) gradient convolved per channel with a Gaussian of `sigma` pixels."""
    if sigma <= 0:
        return grad
    return gaussian_blur(grad, smoothing_kernel(sigma), sigma)


def coarsen(grad: torch.Tensor, block: int) -> torch.Tensor:
    """(N, 3, H, W) gradient averaged over each `block` x `block` block (the blocks at the right
    and bottom edges may be partial: averaged over the pixels they hold) and spread back over it."""
    if block <= 1:
        return grad
    h, w = grad.shape[-2:]
    means = F.avg_pool2d(grad, block, ceil_mode=True)
    return means.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)[..., :h, :w]


def accumulate(velocity: torch.Tensor | None, grad: torch.Tensor, mu: float) -> torch.Tensor:
    """MI: mu * velocity + grad normalised per image by its mean absolute value (a zero gradient
    stays zero rather than dividing by it)."""
    scale = grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    step = grad / scale
    return step if velocity is None else mu * velocity + step


@torch.no_grad()
def direction(group, grad: torch.Tensor, config) -> torch.Tensor:
    """The direction whose sign the I-FGSM step takes for `group` (its velocity kept on it):
    the gradient itself when neither stage is on."""
    d = coarsen(smooth(grad, config.smooth_sigma), config.coarse_block)
    if config.momentum > 0:
        group.velocity = accumulate(group.velocity, d, config.momentum)
        d = group.velocity
    return d
