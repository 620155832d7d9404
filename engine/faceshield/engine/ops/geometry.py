"""The face region: where the generator looks, and where the perturbation may go.

StarGAN sees a square face crop resized to its resolution (its CelebA loader centre-crops 178
pixels, then resizes to 128). FaceShield optimizes the perturbation at the caller's resolution
through that crop-and-resize, which is differentiable, so the protected image keeps its size and
pixels outside the region are never touched.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError


class Box(NamedTuple):
    """Pixel box [left, top, right, bottom) in image coordinates."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def centre_square(height: int, width: int) -> Box:
    """The largest centred square, StarGAN's crop."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return Box(left, top, left + side, top + side)


def resolve_box(box: tuple[int, int, int, int] | None, height: int, width: int, min_side: int = 16) -> Box:
    """Validate a caller box (or choose the centre square) for an image of this size."""
    if box is None:
        return centre_square(height, width)
    try:
        b = Box(*(int(v) for v in box))
    except (TypeError, ValueError):
        raise InvalidInputError("face_box", f"expected four integers (left, top, right, bottom), got {box!r}") from None
    if not (0 <= b.left < b.right <= width and 0 <= b.top < b.bottom <= height):
        raise InvalidInputError(
            "face_box", f"box {tuple(b)} must lie inside the {width}x{height} image with left < right and top < bottom"
        )
    if min(b.width, b.height) < min_side:
        raise InvalidInputError("face_box", f"box {tuple(b)} is smaller than {min_side} pixels on a side")
    return b


def crop_resize(x: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): the box, resized (bilinear, antialiased when shrinking).

    The identity when the box already is the whole image at `size`, so a 128x128 input reaches a
    128x128 generator bit for bit.
    """
    crop = x[:, :, box.top : box.bottom, box.left : box.right]
    if crop.shape[-2:] == (size, size):
        return crop
    shrink = box.height > size or box.width > size
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def paste_mask(mask: torch.Tensor, box: Box, height: int, width: int) -> torch.Tensor:
    """(N, 1, s, s) mask at generator resolution -> (N, 1, H, W), zero outside the box."""
    if mask.shape[-2:] != (box.height, box.width):
        shrink = box.height < mask.shape[-2] or box.width < mask.shape[-1]
        mask = F.interpolate(mask, size=(box.height, box.width), mode="bilinear", align_corners=False, antialias=shrink)
    out = mask.new_zeros(mask.shape[0], mask.shape[1], height, width)
    out[:, :, box.top : box.bottom, box.left : box.right] = mask
    return out


def region_mask(box: Box, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W): 1 inside the box, 0 outside."""
    out = like.new_zeros(1, 1, height, width)
    out[:, :, box.top : box.bottom, box.left : box.right] = 1
    return out
