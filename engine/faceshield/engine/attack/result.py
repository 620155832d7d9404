"""What a protection returns: per image the protected tensor and what it took, per victim and
face region the references, outputs and masks, in the caller's order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..ops.geometry import Box
from .batch import Group


@dataclass
class VictimResult:
    """One victim's side of a protection, per view (image i's box b is row `views.index((i, b))`).

    references / outputs: (V, T, 3, R, R) G(I, c_t) and G(x_k, c_t), no blur; generator_inputs:
    (V, 3, R, R) the original face crop; manipulation_mask: (V, 1, R, R) where computed.
    """

    name: str
    targets: list[str]
    references: torch.Tensor
    generator_inputs: torch.Tensor
    outputs: torch.Tensor | None = None
    manipulation_mask: torch.Tensor | None = None


@dataclass
class ProtectionResult:
    """What one `Protector.protect` call produced, in the caller's batch order.

    protected: per image (3, H, W) in [-1, 1], None where the item was cancelled.
    views: (image, box index) per view row; victims: per attacked victim, its `VictimResult`.
    saliency_mask / manipulation_mask / union_mask: (V, 1, R_m, R_m) at the masks' resolution
    (the largest victim resolution) where computed, else None.
    start: per image, the perturbation x_0 - I actually used (for reproducing a run).
    image_steps: generator forward+backward passes spent, counted per view, target and transform;
    check_passes: forward-only generator passes spent measuring disruption in the loop.
    steps / rounds: per image, the I-FGSM steps and rounds it ran; passes: per image, generator
    passes spent (forward+backward per view, target and transform, and the checks' forwards);
    verified: per image, whether the in-loop check found it disrupted with margin (None where
    the policy never checked).
    """

    protected: list[torch.Tensor | None]
    views: list[tuple[int, int]]
    victims: list[VictimResult]
    saliency_mask: torch.Tensor | None
    manipulation_mask: torch.Tensor | None
    union_mask: torch.Tensor | None
    start: list[torch.Tensor | None]
    cancelled: list[bool]
    boxes: list[tuple[Box, ...]] = field(default_factory=list)
    image_steps: int = 0
    check_passes: int = 0
    steps: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    verified: list[bool | None] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def _only(self) -> VictimResult:
        if len(self.victims) != 1:
            raise AttributeError("this result holds several victims; read .victims")
        return self.victims[0]

    # One victim's tensors, for single-victim callers (the paper's setting).
    @property
    def references(self) -> torch.Tensor:
        return self._only().references

    @property
    def outputs(self) -> torch.Tensor | None:
        return self._only().outputs

    @property
    def generator_inputs(self) -> torch.Tensor:
        return self._only().generator_inputs


def caller_order(groups: Sequence[Group], views: Sequence[tuple[int, int]]):
    """A function stacking per-group view tensors (rows box-major inside each group) into the
    caller's view order; None where any group has none."""
    where = {
        (g.index[k], b): (gi, b * g.n + k)
        for gi, g in enumerate(groups)
        for b in range(len(g.boxes))
        for k in range(g.n)
    }

    def gather(per_group: Callable[[int], torch.Tensor | None]) -> torch.Tensor | None:
        parts = [per_group(gi) for gi in range(len(groups))]
        if any(p is None for p in parts):
            return None
        return torch.stack([parts[where[v][0]][where[v][1]] for v in views])  # type: ignore[index]

    return gather


def concat_results(a: ProtectionResult, b: ProtectionResult) -> ProtectionResult:
    """Two results of consecutive parts of one batch, as one (views renumbered)."""

    def cat(x, y):
        return None if x is None or y is None else torch.cat([x, y])

    offset = len(a.protected)
    victims = [
        VictimResult(
            va.name,
            va.targets,
            torch.cat([va.references, vb.references]),
            torch.cat([va.generator_inputs, vb.generator_inputs]),
            cat(va.outputs, vb.outputs),
            cat(va.manipulation_mask, vb.manipulation_mask),
        )
        for va, vb in zip(a.victims, b.victims, strict=True)
    ]
    return ProtectionResult(
        protected=a.protected + b.protected,
        views=a.views + [(i + offset, box) for i, box in b.views],
        victims=victims,
        saliency_mask=cat(a.saliency_mask, b.saliency_mask),
        manipulation_mask=cat(a.manipulation_mask, b.manipulation_mask),
        union_mask=cat(a.union_mask, b.union_mask),
        start=a.start + b.start,
        cancelled=a.cancelled + b.cancelled,
        boxes=a.boxes + b.boxes,
        image_steps=a.image_steps + b.image_steps,
        check_passes=a.check_passes + b.check_passes,
        steps=a.steps + b.steps,
        rounds=a.rounds + b.rounds,
        passes=a.passes + b.passes,
        verified=a.verified + b.verified,
        timings={k: a.timings.get(k, 0.0) + b.timings.get(k, 0.0) for k in set(a.timings) | set(b.timings)},
    )
