"""A request to protect one image, and its validation against the models and limits.

`check_request` is the one validation every caller goes through (the CLI, the service's
decoder, programs using the engine): it refuses, naming the field, whatever a single request can
get wrong, and returns a `CheckedRequest` whose targets, labels and face boxes are resolved, so
that the batch that later runs it validates nothing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .io.images import check_dimensions
from .models.victims import Victim, select_targets, set_attributes
from .ops.geometry import Box, resolve_box

BoxTuple = tuple[int, int, int, int]
MAX_FACES = 32  # face boxes per image; each costs a pass of every victim per step


@dataclass
class ProtectRequest:
    """One image to protect. `image` is (H, W, 3) uint8 RGB.

    original_attributes: the image's attribute values (0/1) in the model set's attribute order
        (every StarGAN victim's names, `ModelSet.attributes`); None = all zero.
    targets: names of edits to disrupt ("Male", "vintage", or "victim/target"); None = all.
    face_box: one box (left, top, right, bottom), a list of boxes (every face), or None (the
        centre square).
    saliency_mask: the caller's M_sm, (H, W) float in [0, 1], replacing TRACER's.
    seed: seeds this image's random start (None: the configuration's).
    """

    image: np.ndarray
    original_attributes: Sequence[float] | None = None
    targets: Sequence[str] | None = None
    face_box: BoxTuple | Sequence[BoxTuple] | None = None
    saliency_mask: np.ndarray | None = None
    seed: int | None = None


@dataclass(frozen=True)
class CheckedRequest:
    """A `ProtectRequest` that passed `check_request`: nothing about it is re-checked later."""

    image: np.ndarray
    attributes: tuple[float, ...]  # one per model-set attribute, zeros where none were given
    targets: dict[str, tuple[str, ...]]  # victim name -> its targets, in request order
    boxes: tuple[Box, ...]
    saliency_mask: np.ndarray | None
    seed: int | None

    @property
    def target_key(self) -> tuple:
        """What two requests must share to run in one batch (their labels stack)."""
        return tuple((k, v) for k, v in self.targets.items())


def check_image(image: object, max_pixels: int, field: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(field, "expected an (H, W, 3) uint8 RGB array")
    check_dimensions(image.shape[0], image.shape[1], max_pixels, field)
    return image


def check_attributes(values: Sequence[float] | None, names: Sequence[str]) -> tuple[float, ...]:
    """One 0/1 value per attribute name, or all zero when none are given."""
    if values is None or len(values) == 0:
        return (0.0,) * len(names)
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidInputError("original_attributes", f"expected numbers 0 or 1, got {values!r}") from None
    if len(vals) != len(names) or not all(v in (0.0, 1.0) for v in vals):
        shown = ", ".join(names) if names else "none: no StarGAN victim"
        raise InvalidInputError(
            "original_attributes", f"expected {len(names)} values of 0 or 1 ({shown}), got {len(vals)}"
        )
    return tuple(vals)


def check_boxes(arg, height: int, width: int) -> tuple[Box, ...]:
    """One box, several, or None (the centre square), each inside the image."""
    if arg is None:
        return (resolve_box(None, height, width),)
    items = list(arg)
    if items and not isinstance(items[0], (list, tuple, Box)):
        return (resolve_box(tuple(items), height, width),)
    if not items:
        raise InvalidInputError("face_box", "an empty list of face boxes; send none for the centre square")
    if len(items) > MAX_FACES:
        raise InvalidInputError("face_box", f"at most {MAX_FACES} face boxes per image, got {len(items)}")
    return tuple(resolve_box(b, height, width) for b in items)


def check_mask(mask: object, height: int, width: int) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != (height, width):
        raise InvalidInputError(
            "saliency_mask", f"expected a mask of the image's size {(height, width)}, got {m.shape}"
        )
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise InvalidInputError("saliency_mask", "values must be finite and lie in [0, 1]")
    return m


def check_request(
    request: ProtectRequest | CheckedRequest, victims: Sequence[Victim], max_pixels: int
) -> CheckedRequest:
    """Validate `request` against the victims and limits (see the module docstring)."""
    if isinstance(request, CheckedRequest):
        return request
    image = check_image(request.image, max_pixels)
    h, w = image.shape[:2]
    targets = {k: tuple(v) for k, v in select_targets(victims, list(request.targets or [])).items()}
    seed = request.seed
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63
    ):
        raise InvalidInputError("seed", f"must be an integer in [0, 2^63), got {seed!r}")
    return CheckedRequest(
        image=image,
        attributes=check_attributes(request.original_attributes, set_attributes(victims)),
        targets=targets,
        boxes=check_boxes(request.face_box, h, w),
        saliency_mask=check_mask(request.saliency_mask, h, w),
        seed=None if seed is None else int(seed),
    )
