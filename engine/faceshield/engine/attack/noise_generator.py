"""The start of the attack: x_0 = I + M * tau, with tau from a uniform draw refined by the noise
generator (Eqs. 5-8).

    tau_0 ~ U(-eps, eps)                      (seeded per image)
    tau   <- clip(tau + eta * grad J(I + tau), -eps, eps)   K_ng times (eta = 1e-4, K_ng = 5)
    x_0   =  clip(I + M_un * tau, -1, 1)

As specified, eta on the raw gradient of J moves tau by about 1e-8 per pixel: numerically the
noise generator is the uniform start. It runs as the paper has it; `noise_steps=0` skips it.
"""

from __future__ import annotations

import torch

from ..config import IFGSM_JITTER


def uniform_start(shape: tuple[int, ...], epsilon: float, seed: int) -> torch.Tensor:
    """tau_0 ~ U(-eps, eps), float32 on the CPU, from its own seeded generator.

    Drawn per image from the image's own seed, so an image's start does not depend on its batch.
    """
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * epsilon


def initial_tau(kind: str, original: torch.Tensor, seeds: list[int], epsilon: float) -> torch.Tensor:
    """tau for a group's images (n, 3, H, W): zero ("none"), U(-0.001, 0.001) ("jitter": I-FGSM
    from x = I exactly never moves, its gradient being zero there, so Ruiz et al. jitter it), or
    U(-eps, eps) ("uniform", "noise-generator")."""
    if kind == "none":
        return torch.zeros_like(original)
    bound = IFGSM_JITTER if kind == "jitter" else epsilon
    shape = tuple(original.shape[1:])
    return torch.stack([uniform_start(shape, bound, s) for s in seeds]).to(original.device)


def noise_step(tau: torch.Tensor, grad: torch.Tensor, lr: float, epsilon: float) -> torch.Tensor:
    """tau <- clip(tau + eta * grad J, -eps, eps) (gradient ascent on J, Eq. 7 with J maximized)."""
    return (tau + lr * grad).clamp_(-epsilon, epsilon)


def apply_start(original: torch.Tensor, tau: torch.Tensor, mask: torch.Tensor, clip: bool) -> torch.Tensor:
    """x_0 = I + M * tau, clipped to [-1, 1] after the noise generator (docs/method.md §3). A uniform start
    is not clipped, exactly as Ruiz et al.'s `perturb`: the first step's projection does that."""
    x = original + tau * mask
    return x.clamp(-1, 1) if clip else x
