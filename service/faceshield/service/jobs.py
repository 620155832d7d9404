"""Units of engine work and the runners the batcher calls on its worker thread.

A `ProtectJob` is one decoded request that passed the engine's validation (`CheckedRequest`).
Jobs with the same `key` (attack configuration without its seed, policy, targets, extras) can
share one `engine.protect` batch; seeds stay per image.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from faceshield.engine import AttackConfig, CheckedRequest, FaceShieldEngine, InvalidInputError, Policy

log = logging.getLogger(__name__)


@dataclass
class ProtectJob:
    request_id: str
    request: CheckedRequest
    config: AttackConfig  # seed 0: the image's seed is request.seed
    policy: Policy
    want_masks: bool = False
    want_outputs: bool = False
    face_source: str = "given"  # "given", "centre", "detected" or "no-face-centre" (faces.FaceChoice)
    faces_detected: int = 0

    @property
    def key(self) -> Hashable:
        return ("protect", self.config, self.policy, self.request.target_key, self.want_masks or self.want_outputs)

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
    request: CheckedRequest  # the original, its attributes, targets and face boxes
    face_source: str = "given"  # as ProtectJob's
    faces_detected: int = 0

    @property
    def key(self) -> Hashable:
        return ("evaluate", id(self))  # never batched: the engine evaluates one pair at a time

    @property
    def nbytes(self) -> int:
        return self.original.nbytes + self.protected.nbytes


def run_protect(engine: FaceShieldEngine, jobs: list[ProtectJob], cancelled: Callable[[], list[bool]]) -> list:
    """One engine batch; an item the engine refuses fails alone, not with its batch-mates."""
    config, policy, extras = jobs[0].config, jobs[0].policy, jobs[0].extras
    try:
        return engine.protect([j.request for j in jobs], config, cancelled=cancelled, extras=extras, policy=policy)
    except InvalidInputError as exc:
        if len(jobs) == 1:
            return [exc]
        log.info("batch of %d refused (%s); running its items one by one", len(jobs), exc.field)
    results = []
    for i, job in enumerate(jobs):
        try:
            one = engine.protect(
                [job.request], config, cancelled=lambda i=i: [cancelled()[i]], extras=extras, policy=policy
            )
            results.append(one[0])
        except InvalidInputError as exc:
            results.append(exc)
    return results


def run_evaluate(engine: FaceShieldEngine, jobs: list[EvaluateJob], cancelled: Callable[[], list[bool]]) -> list:
    out: list[tuple | InvalidInputError | None] = []
    for job, stop in zip(jobs, cancelled(), strict=True):
        if stop:
            out.append(None)
            continue
        try:
            r = job.request
            metrics = engine.evaluate(job.original, job.protected, list(r.attributes), _targets(r), list(r.boxes))
            identity = engine.evaluate_identity(job.original, job.protected, _targets(r), list(r.boxes))
            out.append((*metrics, identity))
        except InvalidInputError as exc:
            out.append(exc)
    return out


def _targets(request: CheckedRequest) -> list[str]:
    from faceshield.engine.models.victims import qualified

    return [qualified(v, t) for v, targets in request.targets.items() for t in targets]


def seedless(config: AttackConfig) -> AttackConfig:
    """The batching key's config: seeds are per image, so they must not split batches."""
    return dataclasses.replace(config, seed=0)
