"""Units of engine work and the runners the batcher calls on its worker thread.

A `ProtectJob` is one decoded, validated request. Jobs with the same `key` (attack configuration
without its seed, targets, extras) can share one `engine.protect` batch; seeds stay per image.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from faceshield.engine import AttackConfig, FaceShieldEngine, InvalidInputError, ProtectRequest

log = logging.getLogger(__name__)


@dataclass
class ProtectJob:
    request_id: str
    request: ProtectRequest
    config: AttackConfig  # seed 0: the image's seed is request.seed
    want_masks: bool = False
    want_outputs: bool = False

    @property
    def key(self) -> Hashable:
        targets = None if self.request.targets is None else tuple(self.request.targets)
        return ("protect", self.config, targets, self.want_masks or self.want_outputs)

    @property
    def extras(self) -> bool:
        return self.want_masks or self.want_outputs

    @property
    def nbytes(self) -> int:
        """Decoded bytes this job holds while it waits (the image and the caller's mask)."""
        mask = self.request.saliency_mask
        return self.request.image.nbytes + (0 if mask is None else mask.nbytes)


@dataclass
class EvaluateJob:
    request_id: str
    original: np.ndarray
    protected: np.ndarray
    original_attributes: Sequence[float] | None
    targets: Sequence[str] | None
    face_box: tuple[int, int, int, int] | None

    @property
    def key(self) -> Hashable:
        return ("evaluate", id(self))  # never batched: the engine evaluates one pair at a time

    @property
    def nbytes(self) -> int:
        return self.original.nbytes + self.protected.nbytes


def run_protect(engine: FaceShieldEngine, jobs: list[ProtectJob], cancelled: Callable[[], list[bool]]) -> list:
    """One engine batch; an item the engine refuses fails alone, not with its batch-mates."""
    config, extras = jobs[0].config, jobs[0].extras
    try:
        return engine.protect([j.request for j in jobs], config, cancelled=cancelled, extras=extras)
    except InvalidInputError as exc:
        if len(jobs) == 1:
            return [exc]
        log.info("batch of %d refused (%s); running its items one by one", len(jobs), exc.field)
    results = []
    for i, job in enumerate(jobs):
        try:
            one = engine.protect([job.request], config, cancelled=lambda i=i: [cancelled()[i]], extras=extras)
            results.append(one[0])
        except InvalidInputError as exc:
            results.append(exc)
    return results


def run_evaluate(engine: FaceShieldEngine, jobs: list[EvaluateJob], cancelled: Callable[[], list[bool]]) -> list:
    out = []
    for job, stop in zip(jobs, cancelled(), strict=True):
        if stop:
            out.append(None)
            continue
        try:
            out.append(engine.evaluate(job.original, job.protected, job.original_attributes, job.targets, job.face_box))
        except InvalidInputError as exc:
            out.append(exc)
    return out


def seedless(config: AttackConfig) -> AttackConfig:
    """The batching key's config: seeds are per image, so they must not split batches."""
    return dataclasses.replace(config, seed=0)
