"""What the engine hands back: the protected image, its metrics per face, victim and target, the
verdict, and what the engine itself is (`EngineInfo`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .attack.identity_check import IdentityReport
from .metrics import InputMetrics, TargetMetrics
from .models.victims import Victim


@dataclass(frozen=True)
class GeneratorOutput:
    """G(I, c_t) and G(x_k, c_t) for one face, victim and target, (R, R, 3) uint8."""

    victim: str
    target: str
    face: int
    original: np.ndarray
    protected: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """Whether the image the caller receives is protected, and what it took.

    rule: "identity" (the product's): protected when every face of the protected photo still
        matches its owner and every edit's deepfake fails to (`identity`, judged by dlib's face
        recogniser, after each processing in `after` too); "disruption" (the paper's tables,
        Ruiz et al.'s rule): protected when every target of every victim is disrupted (output
        MSE > 0.05) on every face, and after each processing in `after`.
    not_disrupted: "victim/target" (with "@face" past the first face) that were not.
    after: processing name -> whether every target stayed disrupted after it.
    steps / rounds: I-FGSM steps and rounds this image ran (rounds > 1 only under `ensure`).
    """

    protected: bool
    not_disrupted: tuple[str, ...]
    steps: int
    rounds: int
    after: dict[str, bool] = field(default_factory=dict)
    passes: int = 0  # generator passes spent on this image (each forward+backward, and each check's forward)
    rule: str = "disruption"
    identity: IdentityReport | None = None

    @property
    def disrupted(self) -> bool:
        """Ruiz et al.'s rule alone: every edit's output MSE above 0.05 (and after `after`)."""
        return not self.not_disrupted and all(self.after.values())


@dataclass
class ProtectOutcome:
    protected: np.ndarray  # (H, W, 3) uint8
    input: InputMetrics
    targets: list[TargetMetrics]  # per face, victim and target
    verdict: Verdict
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (R_m, R_m) float32, first face
    generator_outputs: list[GeneratorOutput] = field(default_factory=list)
    compute_seconds: float = 0.0
    # Share of the (first) face crop where the step mask exceeds 0.5: how much of the region the
    # method may move freely (1.0 for the unmasked methods). A low share explains a miss.
    mask_coverage: float = 1.0
    mask_mean: float = 1.0  # the mean step scale over that crop (1.0: every pixel takes full steps)

    @property
    def outputs_original(self) -> np.ndarray | None:
        """(T, R, R, 3) G(I, c_t) of the first face, where every victim shares one resolution."""
        return _stacked(self.generator_outputs, "original")

    @property
    def outputs_protected(self) -> np.ndarray | None:
        return _stacked(self.generator_outputs, "protected")


@dataclass(frozen=True)
class EngineInfo:
    name: str
    version: str
    trained: bool
    description: str
    victims: list[Victim]
    attributes: list[str]
    saliency: str
    hashes: dict[str, str]
    providers: list[str]
    device: str
    precision: str
    compile: str
    saliency_runtime: str
    memory_batch: int | None
    limits: object  # pipeline.Limits

    @property
    def resolution(self) -> int:
        return max(v.resolution for v in self.victims)


def _stacked(outputs: list[GeneratorOutput], which: str) -> np.ndarray | None:
    first = [getattr(o, which) for o in outputs if o.face == 0]
    if not first or len({a.shape for a in first}) != 1:
        return None
    return np.stack(first)
