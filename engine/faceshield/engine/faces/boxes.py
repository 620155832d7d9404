"""Face boxes: from a detector's tight box to the head region the victims were trained on.

A cascade detector boxes the face from the eyebrows to the mouth. StarGAN and the CycleGAN
victims were trained on loose, square head crops (CelebA's aligned 178 x 218 images centre-
cropped to 178 x 178: hair, ears and chin inside, the face about 60% of the side), so a tight
box is grown by HEAD_FACTOR = 1.6 (about 1 / 0.6) about its centre, made square, moved inside
the image where it sticks out, and clipped only when the image is smaller than the square.

Boxes here are plain (left, top, right, bottom) integer tuples, pixel edges, right and bottom
exclusive, as `ProtectRequest.face_box` takes them.
"""

from __future__ import annotations

from collections.abc import Sequence

BoxTuple = tuple[int, int, int, int]
HEAD_FACTOR = 1.6


def head_box(face: Sequence[int], height: int, width: int, factor: float = HEAD_FACTOR) -> BoxTuple:
    """The square head region around a tight face box, inside a height x width image."""
    left, top, right, bottom = (int(v) for v in face)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    side = min(round(max(right - left, bottom - top) * factor), height, width)
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return (x0, y0, x0 + side, y0 + side)


def overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over the smaller box's area (1.0: one box lies inside the other)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def merge(preferred: Sequence[BoxTuple], others: Sequence[BoxTuple], threshold: float = 0.3) -> list[BoxTuple]:
    """`preferred` boxes, then each of `others` that overlaps none kept so far by `threshold` or more."""
    kept = list(preferred)
    for b in others:
        if all(overlap(b, k) < threshold for k in kept):
            kept.append(b)
    return kept


def scale(box: Sequence[float], factor: float, height: int, width: int) -> BoxTuple:
    """A box found on an image shrunk by `factor`, in the full image's pixels."""
    left, top, right, bottom = box
    return (
        max(0, int(left * factor)),
        max(0, int(top * factor)),
        min(width, int(round(right * factor))),
        min(height, int(round(bottom * factor))),
    )
