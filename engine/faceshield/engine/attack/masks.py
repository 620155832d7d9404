"""Eq. 2 and Eq. 3: the manipulation mask and the union mask (generator resolution)."""

from __future__ import annotations

import torch


def manipulation_distance(references: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """d = max over targets of sum over channels |y_t - I|: (N, T, 3, R, R), (N, 3, R, R) -> (N, 1, R, R)."""
    return (references - images[:, None]).abs().sum(dim=2).amax(dim=1)[:, None]


def manipulation_mask(references: torch.Tensor, images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """M_ma = d where d >= threshold, else 0 (Eq. 2)."""
    d = manipulation_distance(references, images)
    return torch.where(d >= threshold, d, torch.zeros_like(d))


def union_mask(
    saliency: torch.Tensor, manipulation: torch.Tensor, alpha: float = 1.0, beta: float = 0.1
) -> torch.Tensor:
    """M_un = alpha * M_sm + beta * M_ma (Eq. 3), not clamped: the epsilon projection bounds the perturbation."""
    return alpha * saliency + beta * manipulation
