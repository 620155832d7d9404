"""The masked I-FGSM step (Eq. 16) and the projection that keeps x inside the epsilon ball.

    x <- clip_[-1, 1]( I + clip_[-eps, eps]( x + a * sign(grad_x J(x)) * M - I ) )

With M = 1 and no blur this is exactly Ruiz et al.'s `LinfPGDAttack.perturb` update.
"""

from __future__ import annotations

import torch


def project(x: torch.Tensor, original: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The point of the L-inf ball of radius `epsilon` around `original` (and of [-1, 1]) nearest x."""
    return (original + (x - original).clamp(-epsilon, epsilon)).clamp(-1, 1)


@torch.no_grad()
def ifgsm_step(
    x: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, original: torch.Tensor, step_size: float, epsilon: float
) -> torch.Tensor:
    """One ascent step on J, confined to the mask (N, 1, H, W) and projected; x, grad (N, 3, H, W)."""
    return project(x + step_size * grad.sign() * mask, original, epsilon)
