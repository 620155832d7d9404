"""dlib's aligned face chip as a differentiable operation.

dlib (Davis E. King, Boost Software License 1.0) feeds its face-recognition network a 150 x 150
"chip" cut by `get_face_chip_details(shape, 150, 0.25)` and `extract_image_chip`
(dlib/image_transforms/interpolation.h). This module reproduces both, written from their
description:

Geometry (`chip_geometry`, NumPy, from the ORIGINAL photo's landmarks, never differentiated):
dlib's 5-point template T (eye corners and the base of the nose, in [0, 1]) is padded,
p = (padding + T) / (1 + 2 padding) * size, and the least-squares similarity transform
x -> c R x + t from p to the landmarks is fitted (Umeyama's method, as dlib's
`find_similarity_transform`). The chip is the rectangle of side size * c centred on the image
of the chip's centre (size/2, size/2), turned by R's angle. dlib's rectangles count pixels
(width = right - left + 1), so chip pixel (i, j), 0 <= i, j <= size - 1, samples the image at

    centre + R(angle) ((i / (size - 1) - 1/2) (width - 1), (j / (size - 1) - 1/2) (height - 1))

with pixel centres at integer coordinates, bilinearly (`grid_sample(align_corners=True)`).

Pyramid: where the rectangle is more than about twice the chip's side, dlib does not sample the
photo itself: it crops the rotated rectangle's bounding box (grown by a margin), builds an image
pyramid with `pyramid_down<2>` (a [1 4 6 4 1]^2 / 256 filter, every second pixel) and samples
the first level whose rectangle, mapped down by the pyramid's `point_down`
(p / 2 - (1.25, 0.75)), is no longer larger than the chip. `aligned_chip` does the same, with
convolutions, so the chip stays differentiable w.r.t. every pixel of the photo and matches
dlib's on large faces. (dlib stores each level and the chip as 8-bit integers, truncating; this
operation does not round, so it reads on average about 0.5 levels of 255 above dlib per
truncation.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidInputError

# dlib's 5-point template: outer and inner corner of the left eye (image left), of the right
# eye, and the base of the nose, in the order of its shape_predictor_5_face_landmarks.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
_PYRAMID_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)


@dataclass(frozen=True)
class ChipGeometry:
    """Where a chip lies in the photo: the rectangle's centre (x, y) in pixels, its angle
    (radians, x towards y), its width and height in dlib's pixel count (right - left + 1), and
    the chip's side in pixels."""

    centre: tuple[float, float]
    angle: float
    width: float
    height: float
    size: int

    def rect(self) -> tuple[float, float, float, float]:
        """The unrotated rectangle (left, top, right, bottom) about the centre, as dlib's."""
        cx, cy = self.centre
        hw, hh = (self.width - 1) / 2, (self.height - 1) / 2
        return (cx - hw, cy - hh, cx + hw, cy + hh)

    def matrix(self) -> np.ndarray:
        """(2, 3) affine map from chip pixel (column, row, 1) to photo (x, y)."""
        return _affine(self.centre, self.angle, self.width - 1, self.height - 1, self.size)


def _affine(centre, angle: float, extent_x: float, extent_y: float, size: int) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    a = np.array([[c, -s], [s, c]]) @ np.diag([extent_x / (size - 1), extent_y / (size - 1)])
    t = np.asarray(centre, float) - a @ np.full(2, (size - 1) / 2)
    return np.concatenate([a, t[:, None]], axis=1)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares x -> M x + t with M = c R (Umeyama 1991, eqs. 34-43), as dlib fits it."""
    mean_s, mean_t = source.mean(0), target.mean(0)
    ds, dt = source - mean_s, target - mean_t
    sigma = (ds**2).sum(1).mean()
    cov = dt.T @ ds / len(source)
    u, d, vt = np.linalg.svd(cov)
    s = np.ones(2)
    det = np.linalg.det(cov)
    if det < 0 or (det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        s[1 if d[1] < d[0] else 0] = -1
    r = u @ np.diag(s) @ vt
    scale = (d * s).sum() / sigma if sigma != 0 else 1.0
    m = scale * r
    return m, mean_t - m @ mean_s


def chip_geometry(landmarks_5x2: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipGeometry:
    """dlib's `get_face_chip_details` for a 5-point shape ((5, 2) x, y in photo pixels, in the
    order of dlib's 5-point predictor)."""
    points = np.asarray(landmarks_5x2, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise InvalidInputError("landmarks", f"expected 5 finite (x, y) points, got shape {points.shape}")
    if size < 2 or padding < 0:
        raise InvalidInputError("size", f"chip size {size} / padding {padding}: need size >= 2, padding >= 0")
    template = (padding + TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(template, points)
    p = m @ np.array([1.0, 0.0])
    scale = float(np.hypot(*p))
    if scale == 0:
        raise InvalidInputError("landmarks", "the 5 points coincide")
    centre = m @ np.array([size / 2, size / 2]) + t
    return ChipGeometry(
        (float(centre[0]), float(centre[1])), float(math.atan2(p[1], p[0])), size * scale, size * scale, size
    )


# -- dlib's extract_image_chips: which pyramid level, which crop ------------------------------
def _area(rect) -> float:
    left, top, right, bottom = rect
    return 0.0 if left > right or top > bottom else (right - left + 1) * (bottom - top + 1)


def _rect_down(rect):
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _lround(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


@dataclass(frozen=True)
class _Plan:
    crop: tuple[int, int, int, int] | None  # left, top, right, bottom (inclusive); None: nothing inside
    levels: int  # pyramid_down<2> steps applied to the crop (0: sample the photo itself)
    matrix: np.ndarray  # chip (column, row, 1) -> (x, y) in the sampled image


def _plan(geometry: ChipGeometry, height: int, width: int) -> _Plan:
    rect, chip_area = geometry.rect(), geometry.size**2
    down, depth, grow = _rect_down(rect), 0, 2.0
    while _area(down) > chip_area:
        down, depth, grow = _rect_down(down), depth + 1, grow * 2 + 2
    if depth == 0:
        return _Plan(None, 0, geometry.matrix())
    cx, cy = geometry.centre
    c, s = math.cos(geometry.angle), math.sin(geometry.angle)
    xs, ys = [], []
    for x, y in ((rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]), (rect[2], rect[3])):
        xs.append(cx + c * (x - cx) - s * (y - cy))
        ys.append(cy + s * (x - cx) + c * (y - cy))
    box = (
        max(min(xs) - grow, 0.0),
        max(min(ys) - grow, 0.0),
        min(max(xs) + grow, width - 1.0),
        min(max(ys) + grow, height - 1.0),
    )
    left, top, right, bottom = (_lround(v) for v in box)
    if left > right or top > bottom:
        return _Plan(None, -1, geometry.matrix())
    level_rect = (rect[0] - left, rect[1] - top, rect[2] - left, rect[3] - top)
    for _ in range(depth):
        level_rect = _rect_down(level_rect)
    centre = ((level_rect[0] + level_rect[2]) / 2, (level_rect[1] + level_rect[3]) / 2)
    matrix = _affine(
        centre, geometry.angle, level_rect[2] - level_rect[0], level_rect[3] - level_rect[1], geometry.size
    )
    return _Plan((left, top, right, bottom), depth, matrix)


def pyramid_down(image: torch.Tensor) -> torch.Tensor:
    """dlib's `pyramid_down<2>` without its integer truncation: (N, C, H, W) -> (N, C, (H - 3) // 2,
    (W - 3) // 2), output (r, c) the [1 4 6 4 1]^2 / 256 average about input (2r + 2, 2c + 2)."""
    channels = image.shape[1]
    taps = torch.tensor(_PYRAMID_TAPS, dtype=image.dtype, device=image.device) / 16
    rows = F.conv2d(image, taps.view(1, 1, 1, 5).expand(channels, 1, 1, 5), stride=(1, 2), groups=channels)
    return F.conv2d(rows, taps.view(1, 1, 5, 1).expand(channels, 1, 5, 1), stride=(2, 1), groups=channels)


def _as_column(value, n: int, like: torch.Tensor, default: float) -> torch.Tensor:
    if value is None:
        return torch.full((n,), default, dtype=like.dtype, device=like.device)
    out = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if out.numel() == 1:
        out = out.expand(n)
    if out.numel() != n:
        raise InvalidInputError("jitter", f"expected {n} values (one per image), got {out.numel()}")
    return out


def aligned_chip(
    images: torch.Tensor,
    geometry: ChipGeometry | Sequence[ChipGeometry],
    size: int = 150,
    jitter: tuple | None = None,
) -> torch.Tensor:
    """(N, 3, H, W) photos, any value range -> (N, 3, size, size) chips as dlib cuts them,
    differentiable w.r.t. the photos. `geometry`: one for all photos or one per photo (its own
    `size` must equal `size`). `jitter`: optional (dx, dy, scale), each a number or an (N,) tensor:
    the sampling rectangle moves by (dx, dy) CHIP pixels along the chip's own axes and is scaled
    by `scale` about its centre (expectation over small alignment errors: about +-2 px, +-3 %).
    Samples falling outside the photo read 0, as dlib's."""
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[-2] < 2:
        raise InvalidInputError("images", f"expected (N, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    n, _, height, width = images.shape
    geometries = [geometry] * n if isinstance(geometry, ChipGeometry) else list(geometry)
    if len(geometries) != n:
        raise InvalidInputError("geometry", f"{len(geometries)} chip geometries for {n} images")
    if any(g.size != size for g in geometries):
        raise InvalidInputError("size", f"the chip geometries were computed for another size than {size}")
    dx, dy, scale = (None, None, None) if jitter is None else jitter
    dx, dy = _as_column(dx, n, images, 0.0), _as_column(dy, n, images, 0.0)
    scale = _as_column(scale, n, images, 1.0)
    axis = torch.arange(size, dtype=images.dtype, device=images.device) - (size - 1) / 2
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    chips = []
    for i, g in enumerate(geometries):
        plan = _plan(g, height, width)
        source = images[i : i + 1]
        if plan.levels < 0:  # the chip lies outside the photo: dlib's is black
            chips.append(source.new_zeros(1, source.shape[1], size, size) + 0 * source.sum())
            continue
        if plan.crop is not None:
            left, top, right, bottom = plan.crop
            source = source[:, :, top : bottom + 1, left : right + 1]
            for _ in range(plan.levels):
                if min(source.shape[-2:]) <= 8:  # dlib's pyramid gives an empty image here
                    source = source.new_zeros(*source.shape[:2], 2, 2)
                    break
                source = pyramid_down(source)
        m = torch.as_tensor(plan.matrix, dtype=images.dtype, device=images.device)
        u = scale[i] * gx + dx[i] + (size - 1) / 2  # jittered chip column
        v = scale[i] * gy + dy[i] + (size - 1) / 2
        x = m[0, 0] * u + m[0, 1] * v + m[0, 2]
        y = m[1, 0] * u + m[1, 1] * v + m[1, 2]
        h, w = source.shape[-2:]
        grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
        chips.append(F.grid_sample(source, grid[None], mode="bilinear", padding_mode="zeros", align_corners=True))
    return torch.cat(chips, 0)
