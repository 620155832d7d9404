"""What the generator sees of x at each step: the "blur per step" column of the method table.

The objective averages over the transforms a step draws (expectation over transformation):

    none             x itself (ifgsm, pgd)
    gaussian         the method's Gaussian blur, 11 taps, sigma 1 (paper IV-A)
    eot              nine of Ruiz et al.'s blurs per step, continuing through their cycle
    spread-spectrum  one of Ruiz et al.'s blurs per step, continuing through their cycle
    robust           per step: differentiable JPEG at a quality drawn from [70, 95], a down-up
                     resize by a factor drawn from [0.5, 1], and the method's Gaussian blur
    robust-cycle     one of those per step, in turn: JPEG, resize, JPEG (JPEG, the harder to
                     survive, twice as often); a third of `robust`'s cost per step

Every image of a batch sees the same transforms at a given step, and the draws depend only on
the configuration's seed and the step, so an image's result does not depend on its batch.
"""

from __future__ import annotations

import itertools
from typing import Protocol

import torch

from ..config import AttackConfig
from ..defaults import EOT_SAMPLES
from ..ops.filters import Blur, ruiz_blur_schedule
from ..ops.transforms import JPEG, JPEG_QUALITY_RANGE, RESIZE_FACTOR_RANGE, ResizeDownUp


class ImageTransform(Protocol):
    """What a step applies to x (N, 3, H, W): a function, a module or a `Blur`. A protocol, not a
    `Callable`: mypy does not see a NamedTuple's `__call__` (`Blur`) as making it callable."""

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...


Transform = ImageTransform | None  # None: the identity, at no cost


class TransformSchedule:
    """Yields, step after step, the transforms the objective averages over."""

    def __init__(self, config: AttackConfig):
        self.kind = config.stages.blur
        self.gaussian = Blur("gaussian", config.blur_kernel, config.blur_sigma)
        self._ruiz = ruiz_blur_schedule()
        self._draws = torch.Generator().manual_seed(config.seed)

    def next(self) -> list[Transform]:
        if self.kind == "none":
            return [None]
        if self.kind == "gaussian":
            return [self.gaussian]
        if self.kind == "spread-spectrum":
            return [next(self._ruiz)]
        if self.kind == "eot":
            return list(itertools.islice(self._ruiz, EOT_SAMPLES))
        u = torch.rand(2, generator=self._draws).tolist()
        quality = JPEG_QUALITY_RANGE[0] + u[0] * (JPEG_QUALITY_RANGE[1] - JPEG_QUALITY_RANGE[0])
        factor = RESIZE_FACTOR_RANGE[0] + u[1] * (RESIZE_FACTOR_RANGE[1] - RESIZE_FACTOR_RANGE[0])
        if self.kind == "robust-cycle":
            self._turn = (getattr(self, "_turn", -1) + 1) % 3
            return [ResizeDownUp(factor) if self._turn == 1 else JPEG(round(quality))]
        return [JPEG(round(quality)), ResizeDownUp(factor), self.gaussian]
