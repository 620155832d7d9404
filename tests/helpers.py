"""Helpers shared by tests: tiny seeded models and masks. Nothing is downloaded."""

from __future__ import annotations

import torch

from faceshield.engine.models.stargan import Generator

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
ASTRONAUT = "assets/astronaut.png"


def tiny_generator(seed: int = 0, conv_dim: int = 8, repeat_num: int = 2, c_dim: int = 5) -> Generator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = Generator(conv_dim=conv_dim, c_dim=c_dim, repeat_num=repeat_num)
    return g.eval().requires_grad_(False)


def ellipse_mask(h: int, w: int, cy: float = 0.45, cx: float = 0.5, ry: float = 0.3, rx: float = 0.22) -> torch.Tensor:
    """A face-shaped soft-edged mask in [0, 1] of shape (h, w)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return (1.0 - d).clamp(0, 1).sqrt()
