"""Where the perturbation may go: Eq. 2 (manipulation mask), Eq. 3 (union mask), and the step
mask at the image's own resolution.

    M_ma = d where d >= 0.5, else 0,   d = max over victims and targets of sum_c |y_t - I|
    M_un = alpha * M_sm + beta * M_ma   (alpha 1.0, beta 0.1; not clamped: the epsilon
                                         projection bounds the perturbation)

M_sm (TRACER) is computed once per face region at the masks' resolution R_m (the largest victim
resolution); each victim's M_ma is computed at its own resolution and resized to R_m; the union is
pasted into each face box, zero outside every box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import InvalidInputError
from ..ops.geometry import Box, crop_resize, paste_mask, region_mask


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


def to_size(mask: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, r, r) -> (N, 1, size, size), bilinear (antialiased when shrinking); the identity at size."""
    if mask.shape[-1] == size and mask.shape[-2] == size:
        return mask
    shrink = mask.shape[-1] > size or mask.shape[-2] > size
    return F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def across_victims(masks: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Each victim's M_ma at its own resolution -> their maximum at the masks' resolution."""
    return torch.stack([to_size(m, size) for m in masks]).amax(dim=0)


def paste_views(views: torch.Tensor, boxes: Sequence[Box], n: int, height: int, width: int) -> torch.Tensor:
    """Per-view masks (B * n, 1, r, r), box-major -> the step mask (n, 1, H, W): each pasted into
    its box, the maximum where boxes overlap, zero outside every box."""
    pasted = [paste_mask(views[b * n : (b + 1) * n], box, height, width) for b, box in enumerate(boxes)]
    return torch.stack(pasted).amax(dim=0)


def box_mask(boxes: Sequence[Box], n: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W): 1 inside any face box, 0 elsewhere (the mask of unmasked methods, and of the
    last round of `ensure`)."""
    out = torch.stack([region_mask(box, height, width, like) for box in boxes]).amax(dim=0)
    return out.expand(n, 1, height, width)


def prepare(group, stages_mask: str, config, victims, size: int, given: dict, saliency) -> dict[str, torch.Tensor]:
    """Stages 2-4 for one group: sets `group.mask` (n, 1, H, W), the step mask at the image's
    resolution, and returns the per-view masks at `size` for the result ("saliency",
    "manipulation", "union", and "manipulation:<victim>" per victim)."""
    g = group
    h, w = g.original.shape[-2:]
    if stages_mask == "none":
        g.mask = box_mask(g.boxes, g.n, h, w, g.original)
        return {}
    out: dict[str, torch.Tensor] = {"saliency": saliency_views(g, size, given, saliency)}
    step = out["saliency"]
    if stages_mask == "union":
        per_victim = []
        for v in victims:
            m = manipulation_mask(g.refs[v.name], g.crops(g.original, v.resolution), config.manipulation_threshold)
            out[f"manipulation:{v.name}"] = m
            per_victim.append(m)
        out["manipulation"] = across_victims(per_victim, size)
        out["union"] = step = union_mask(out["saliency"], out["manipulation"], config.alpha, config.beta)
    g.mask = paste_views(step, g.boxes, g.n, h, w)
    return out


def saliency_views(g, size: int, given: dict, saliency) -> torch.Tensor:
    """M_sm per view at `size`: the caller's mask (cropped like the image) where given, else the
    saliency model's on the face crop."""
    crops = g.crops(g.original, size)
    out = torch.empty(crops.shape[0], 1, size, size, device=crops.device)
    rows = [(b * g.n + k, i) for b in range(len(g.boxes)) for k, i in enumerate(g.index)]
    need = [row for row, i in rows if i not in given]
    if need:
        if saliency is None:
            raise InvalidInputError(
                "saliency_mask", "this method needs a saliency mask: pass one, or load a saliency model (TRACER)"
            )
        with torch.no_grad():
            s = saliency((crops[need] + 1) / 2).to(crops.device, torch.float32)
        out[need] = to_size(s, size)
    shape = tuple(g.original.shape[-2:])
    for row, i in rows:
        if i not in given:
            continue
        m = torch.as_tensor(given[i], dtype=torch.float32, device=crops.device)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[0] != 1 or tuple(m.shape[1:]) != shape:
            raise InvalidInputError(
                "saliency_mask", f"expected a mask of the image's size {shape}, got {tuple(m.shape)}"
            )
        if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise InvalidInputError("saliency_mask", "values must be finite and lie in [0, 1]")
        out[row] = crop_resize(m[None], g.boxes[row // g.n], size)[0]
    return out
