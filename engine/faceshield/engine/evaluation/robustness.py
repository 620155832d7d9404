"""What happens to photos after they are protected: re-encoding, rescaling, blur.

Each transform maps an (H, W, 3) uint8 image to another of the same size. `evaluate_pair`
measures a protected image against its original, plainly and under each transform.

Reference choice. Under a transform T the question is whether G's edit of T(protected) is still
disrupted compared with the edit the forger would have got from T(original) through the same
channel: the metrics are those of `engine.evaluate(T(original), T(protected))`, i.e. output MSE
between G(T(x_adv), c) and G(T(I), c). Comparing with G(I) instead (Ruiz's reference) would
count the transform's own effect on G as protection; `control` measures that effect
(G(T(I), c) against G(I, c)) so the report can show how large it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import InvalidInputError
from ..io.images import to_tensor
from ..io.processing import TRANSFORMS
from ..metrics import InputMetrics, TargetMetrics, output_metrics
from ..models.victims import Victim, select_targets
from ..ops.geometry import crop_resize, resolve_box

# Bump when a transform's definition changes, so an old run is not resumed with new numbers.
TRANSFORMS_VERSION = 1


def resolve_transforms(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise InvalidInputError("robustness", f"unknown transform {unknown[0]!r}; choose from {', '.join(TRANSFORMS)}")
    return list(dict.fromkeys(names))


@dataclass
class PairEvaluation:
    """docs/method.md §5 metrics of (original, protected), plainly and under each transform."""

    input: InputMetrics
    targets: list[TargetMetrics]
    transformed: dict[str, list[TargetMetrics]] = field(default_factory=dict)


def evaluate_pair(
    engine,
    original: np.ndarray,
    protected: np.ndarray,
    original_attributes: Sequence[float] | None = None,
    targets: Sequence[str] | None = None,
    face_box: tuple[int, int, int, int] | None = None,
    transforms: Sequence[str] = (),
) -> PairEvaluation:
    """The engine's metrics for a protected image, and its disruption under each transform."""
    names = resolve_transforms(transforms)
    inp, per_target = engine.evaluate(original, protected, original_attributes, targets, face_box)
    out = PairEvaluation(inp, per_target)
    out.transformed = transformed_metrics(engine, original, protected, original_attributes, targets, face_box, names)
    return out


def transformed_metrics(
    engine,
    original: np.ndarray,
    protected: np.ndarray,
    original_attributes: Sequence[float] | None,
    targets: Sequence[str] | None,
    face_box: tuple[int, int, int, int] | None,
    transforms: Sequence[str],
) -> dict[str, list[TargetMetrics]]:
    """Per transform T: output metrics of G(T(protected)) against G(T(original))."""
    out = {}
    for name in resolve_transforms(transforms):
        t = TRANSFORMS[name]
        _, metrics = engine.evaluate(t(original), t(protected), original_attributes, targets, face_box)
        out[name] = metrics
    return out


def control_metrics(
    engine,
    original: np.ndarray,
    original_attributes: Sequence[float] | None,
    targets: Sequence[str] | None,
    face_box: tuple[int, int, int, int] | None,
    transforms: Sequence[str],
) -> dict[str, list[TargetMetrics]]:
    """Per transform T, with no protection at all: G(T(original)) against G(original).

    How often the transform alone would pass Ruiz's success rule if G(original) were the
    reference; the reason the robustness numbers use G(T(original)) instead.
    """
    out = {}
    for name in resolve_transforms(transforms):
        _, metrics = engine.evaluate(original, TRANSFORMS[name](original), original_attributes, targets, face_box)
        out[name] = metrics
    return out


class TransformedBatch:
    """`transformed_metrics` for many images at once, with G(T(original)) computed once.

    The evaluation runner attacks the same image with many configurations; the reference edits
    G(T(I), c_t) do not depend on the configuration, so they are cached per (image, transform,
    victim, target). Each generator call covers every image of the batch, one victim at a time.
    The numbers are those of `engine.evaluate` up to float rounding of batched convolutions (the
    same `output_metrics`).
    """

    def __init__(self, engine):
        self.engine = engine
        self.victims = {v.name: v for v in engine.protector.victims}
        self._refs: dict[tuple[str, str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def clear(self) -> None:
        self._refs.clear()

    def _groups(self, targets: Sequence[str]) -> list[tuple[Victim, list[str]]]:
        """(victim, its target names) for the requested targets, in the engine's victim order."""
        chosen = select_targets(list(self.victims.values()), list(targets))
        return [(self.victims[name], names) for name, names in chosen.items()]

    def _crop(self, image: np.ndarray, face_box, victim) -> torch.Tensor:
        box = resolve_box(face_box, image.shape[0], image.shape[1])
        x = to_tensor(image)[None].to(self.engine.device)
        return crop_resize(x, box, victim.resolution)[0]

    def _labels(self, attributes: Sequence[Sequence[float] | None], victim, names: Sequence[str]) -> torch.Tensor:
        width = len(self.engine.attributes)
        rows = [[0.0] * width if not a else [float(v) for v in a] for a in attributes]
        original = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), width)
        return victim.labels(original, self.engine.attributes, list(names)).to(self.engine.device)  # (n, T, c)

    def metrics(
        self,
        keys: Sequence[str],
        originals: Sequence[np.ndarray],
        protected: Sequence[np.ndarray],
        attributes: Sequence[Sequence[float] | None],
        targets: Sequence[str],
        transforms: Sequence[str],
        face_boxes: Sequence | None = None,
    ) -> list[dict[str, list[TargetMetrics]]]:
        """Per image (identified by `keys[i]` for the cache): transform -> per-target metrics."""
        names = resolve_transforms(transforms)
        n = len(originals)
        boxes = list(face_boxes) if face_boxes is not None else [None] * n
        out: list[dict[str, list[TargetMetrics]]] = [{t: [] for t in names} for _ in range(n)]
        for victim, tnames in self._groups(targets):
            labels = self._labels(attributes, victim, tnames)
            for name in names:
                base, refs = self._references(keys, originals, labels, victim, tnames, name, boxes)
                adv = torch.stack([self._crop(TRANSFORMS[name](protected[i]), boxes[i], victim) for i in range(n)])
                outs = self.engine.protector.generate(victim, adv, labels)
                for i, row in enumerate(output_metrics(base, refs, outs, tnames)):
                    out[i][name] += [replace(m, victim=victim.name) for m in row]
        return out

    def control(
        self,
        keys: Sequence[str],
        originals: Sequence[np.ndarray],
        attributes: Sequence[Sequence[float] | None],
        targets: Sequence[str],
        transforms: Sequence[str],
        face_boxes: Sequence | None = None,
    ) -> list[dict[str, list[TargetMetrics]]]:
        """`control_metrics` for many images: G(T(I), c_t) against G(I, c_t), no protection."""
        n = len(originals)
        boxes = list(face_boxes) if face_boxes is not None else [None] * n
        names = resolve_transforms(transforms)
        out: list[dict[str, list[TargetMetrics]]] = [{t: [] for t in names} for _ in range(n)]
        for victim, tnames in self._groups(targets):
            labels = self._labels(attributes, victim, tnames)
            crops = torch.stack([self._crop(originals[i], boxes[i], victim) for i in range(n)])
            plain = self.engine.protector.generate(victim, crops, labels)
            for name in names:
                _, refs = self._references(keys, originals, labels, victim, tnames, name, boxes)
                for i, row in enumerate(output_metrics(crops, plain, refs, tnames)):
                    out[i][name] += [replace(m, victim=victim.name) for m in row]
        return out

    def prepare(
        self,
        keys: Sequence[str],
        originals: Sequence[np.ndarray],
        attributes: Sequence[Sequence[float] | None],
        targets: Sequence[str],
        transforms: Sequence[str],
        face_boxes: Sequence | None = None,
    ) -> None:
        """Compute and cache G(T(I), c_t) for these images and every target, in one batch per
        transform, so that the references never depend on which call needed them first (a
        resumed run then repeats an uninterrupted one exactly)."""
        n = len(originals)
        boxes = list(face_boxes) if face_boxes is not None else [None] * n
        for victim, tnames in self._groups(targets):
            labels = self._labels(attributes, victim, tnames)
            for name in resolve_transforms(transforms):
                self._references(keys, originals, labels, victim, tnames, name, boxes)

    def _references(self, keys, originals, labels, victim, targets, name, boxes) -> tuple[torch.Tensor, torch.Tensor]:
        """T(I) at the victim's resolution (n, 3, R, R) and G(T(I), c_t) (n, T, 3, R, R), cached."""
        n = len(originals)
        v = victim.name
        need = [i for i in range(n) if any((keys[i], name, v, tg) not in self._refs for tg in targets)]
        if need:
            crops = torch.stack([self._crop(TRANSFORMS[name](originals[i]), boxes[i], victim) for i in need])
            refs = self.engine.protector.generate(victim, crops, labels[need])
            for row, i in enumerate(need):
                for k, tg in enumerate(targets):
                    self._refs[(keys[i], name, v, tg)] = (crops[row], refs[row, k])
        base = torch.stack([self._refs[(keys[i], name, v, targets[0])][0] for i in range(n)])
        refs = torch.stack([torch.stack([self._refs[(keys[i], name, v, tg)][1] for tg in targets]) for i in range(n)])
        return base, refs
