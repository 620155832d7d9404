"""Batch bookkeeping: images that share a size and face boxes move through the attack as one
tensor (a `Group`), and leave it when cancelled or done.

A *view* is one face region of one image as one victim sees it: the region cropped and resized to
the victim's resolution. An image with B face boxes has B views per victim, ordered box-major
inside its group (view b * n + k is box b of the group's image k).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..ops.geometry import Box, crop_resize
from .objective import SSIMPenalty


@dataclass
class Group:
    """Images sharing (H, W, boxes), with what each stage computed for them.

    index: their positions in the caller's batch; original / x: (n, 3, H, W); mask: (n, 1, H, W)
    where the step may move pixels; labels[victim]: (n, T, c); refs[victim]: (B * n, T, 3, R, R)
    G(I, c_t) per view; seeds: per image; done: per image, disrupted with margin (early stop).
    """

    index: list[int]
    boxes: tuple[Box, ...]
    original: torch.Tensor
    seeds: list[int]
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    refs: dict[str, torch.Tensor] = field(default_factory=dict)
    mask: torch.Tensor | None = None
    x: torch.Tensor | None = None
    ssim: SSIMPenalty | None = None  # built on first use; rebuilt after `keep`
    velocity: torch.Tensor | None = None  # the momentum stage's accumulated direction (attack/transfer.py)

    @property
    def n(self) -> int:
        return len(self.index)

    def get_x(self) -> torch.Tensor:
        """x, once the start has set it (tau while the noise generator runs)."""
        if self.x is None:
            raise RuntimeError("the group's x is read before the start set it")
        return self.x

    def get_mask(self) -> torch.Tensor:
        """The step mask, once the masks stage has set it."""
        if self.mask is None:
            raise RuntimeError("the group's mask is read before the masks stage set it")
        return self.mask

    def crops(self, x: torch.Tensor, size: int) -> torch.Tensor:
        """Every view of `x` (n, 3, H, W) at `size`: (B * n, 3, size, size), box-major."""
        return torch.cat([crop_resize(x, box, size) for box in self.boxes])

    def per_image(self, values: torch.Tensor) -> torch.Tensor:
        """(B * n, ...) per view -> (n, ...) mean over each image's boxes."""
        return values.reshape(len(self.boxes), self.n, *values.shape[1:]).mean(dim=0)

    def view_rows(self, rows: Sequence[int]) -> torch.Tensor:
        """The view rows of images `rows` (positions inside the group)."""
        return torch.tensor([b * self.n + r for b in range(len(self.boxes)) for r in rows], device=self.original.device)

    def keep(self, rows: list[int]) -> Group:
        """The group restricted to images `rows` (positions inside it)."""
        sel = torch.tensor(rows, device=self.original.device)
        views = self.view_rows(rows)
        return Group(
            [self.index[r] for r in rows],
            self.boxes,
            self.original[sel],
            [self.seeds[r] for r in rows],
            {k: v[sel] for k, v in self.labels.items()},
            {k: v[views] for k, v in self.refs.items()},
            None if self.mask is None else self.mask[sel],
            None if self.x is None else self.x[sel],
            velocity=None if self.velocity is None else self.velocity[sel],
        )


def make_groups(
    images: Sequence[torch.Tensor],
    boxes: Sequence[tuple[Box, ...]],
    seeds: Sequence[int],
    labels: dict[str, torch.Tensor],
) -> list[Group]:
    """Group images by (H, W, boxes), keeping the caller's order inside each group."""
    keyed: dict[tuple, list[int]] = {}
    for i, (im, b) in enumerate(zip(images, boxes, strict=True)):
        keyed.setdefault((im.shape[1], im.shape[2], b), []).append(i)
    groups = []
    for key, idx in keyed.items():
        sel = torch.tensor(idx, device=images[0].device)
        groups.append(
            Group(
                idx,
                key[2],
                torch.stack([images[i] for i in idx]),
                [seeds[i] for i in idx],
                {name: lab[sel] for name, lab in labels.items()},
            )
        )
    return groups


class Cancellation:
    """Polls the caller's per-image cancellation flags and drops flagged images from the groups."""

    def __init__(self, poll: Callable[[], Sequence[bool]] | None, n: int):
        self.poll_fn, self.flags = poll, [False] * n

    def __call__(self, active: list[Group]) -> list[Group]:
        if self.poll_fn is None:
            return active
        now = list(self.poll_fn())
        for g in active:
            for i in g.index:
                self.flags[i] = self.flags[i] or bool(now[i])
        return drop(active, lambda g: [k for k, i in enumerate(g.index) if not self.flags[i]])


def drop(active: list[Group], keep_rows: Callable[[Group], list[int]]) -> list[Group]:
    """Each group restricted to the rows `keep_rows` returns; empty groups leave."""
    out = []
    for g in active:
        rows = keep_rows(g)
        if len(rows) == g.n:
            out.append(g)
        elif rows:
            out.append(g.keep(rows))
    return out


def resolve_boxes(arg, image: torch.Tensor) -> tuple[Box, ...]:
    """A caller's box argument for one (3, H, W) image: None (the centre square), one box or several."""
    from ..errors import InvalidInputError
    from ..ops.geometry import resolve_box

    h, w = image.shape[1], image.shape[2]
    if arg is None:
        return (resolve_box(None, h, w),)
    items = list(arg)
    if items and all(isinstance(v, (int, float)) or hasattr(v, "__index__") for v in items):
        return (resolve_box(tuple(items), h, w),)
    if not items:
        raise InvalidInputError("face_box", "an empty list of face boxes")
    return tuple(resolve_box(b, h, w) for b in items)


def check_images(images: Sequence[torch.Tensor]) -> None:
    from ..errors import InvalidInputError

    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[0] != 3:
            raise InvalidInputError("image", f"image {i} must be (3, H, W), got {tuple(im.shape)}")
        if not torch.isfinite(im).all():
            raise InvalidInputError("image", f"image {i} holds non-finite values")
