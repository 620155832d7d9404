"""The noise generator (Eqs. 5-8): a uniform start refined by a few small gradient steps."""

from __future__ import annotations

import torch


def uniform_start(shape: tuple[int, ...], epsilon: float, seed: int) -> torch.Tensor:
    """tau_0 ~ U(-eps, eps), float32 on the CPU, from its own seeded generator.

    Drawn per image from the image's own seed, so an image's start does not depend on its batch.
    """
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * epsilon


def noise_step(tau: torch.Tensor, grad: torch.Tensor, lr: float, epsilon: float) -> torch.Tensor:
    """tau <- clip(tau + eta * grad J, -eps, eps) (gradient ascent on J, Eq. 7 with J maximized)."""
    return (tau + lr * grad).clamp_(-epsilon, epsilon)
