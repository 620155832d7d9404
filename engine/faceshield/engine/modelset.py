"""A loaded pair of models: the generator to protect against and the saliency model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class ModelSet:
    """What the engine needs to know about the models it runs.

    generator: G(x, c) (eager `Generator` or its TorchScript artifact).
    saliency: TRACER or any (N, 3, h, w) [0, 1] -> (N, 1, h', w') callable; None if absent.
    """

    name: str
    version: str
    generator: torch.nn.Module | Callable
    attributes: list[str]
    resolution: int
    saliency: Callable[[torch.Tensor], torch.Tensor] | None = None
    saliency_name: str = "none"
    hashes: dict[str, str] = field(default_factory=dict)
    trained: bool = True
    description: str = ""
    providers: list[str] = field(default_factory=list)
