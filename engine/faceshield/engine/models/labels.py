"""Target labels, as the official StarGAN `Solver.create_labels` builds them for CelebA."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InvalidInputError

HAIR_COLOURS = frozenset({"Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"})
CELEBA_DEFAULT_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


def create_labels(c_org: torch.Tensor, attributes: Sequence[str], targets: Sequence[str] | None = None) -> torch.Tensor:
    """Target label vectors for each requested attribute.

    For a hair colour: that colour 1 and every other hair colour 0; for any other attribute:
    the original value flipped. Returns (N, T, c_dim) for c_org (N, c_dim).
    """
    attributes = list(attributes)
    targets = list(attributes if targets is None else targets)
    if c_org.ndim != 2 or c_org.shape[1] != len(attributes):
        raise InvalidInputError(
            "original_attributes",
            f"expected {len(attributes)} values per image ({', '.join(attributes)}), got shape {tuple(c_org.shape)}",
        )
    if not targets:
        raise InvalidInputError("targets", "at least one target attribute is needed")
    hair = [i for i, a in enumerate(attributes) if a in HAIR_COLOURS]
    out = []
    for name in targets:
        if name not in attributes:
            raise InvalidInputError("targets", f"unknown attribute {name!r}; this model edits {', '.join(attributes)}")
        i = attributes.index(name)
        c = c_org.clone()
        if i in hair:
            c[:, hair] = 0
            c[:, i] = 1
        else:
            c[:, i] = (c[:, i] == 0).to(c.dtype)
        out.append(c)
    return torch.stack(out, dim=1)
