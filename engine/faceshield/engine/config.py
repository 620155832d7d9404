"""Attack configuration: one frozen object, named defaults from the paper and docs/method.md §3.

The six attackers of docs/method.md §3 differ only in which stages are switched on, so a method is a
`Stages` value, not a code path. `AttackConfig.for_method` builds the paper's defaults for a
method; `dataclasses.replace` changes any single field (ablation rows are built that way).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidInputError

# docs/method.md §1 and §3 defaults (generator space, [-1, 1]).
DEFAULT_EPSILON = 0.05
DEFAULT_STEP_SIZE = 0.01
DEFAULT_STEPS = 10
DEFAULT_NOISE_STEPS = 5
DEFAULT_NOISE_LR = 1e-4
DEFAULT_ALPHA = 1.0  # weight of the saliency mask in M_un
DEFAULT_BETA = 0.1  # weight of the manipulation mask in M_un
DEFAULT_GAMMA = 1.0  # weight of the SSIM penalty
DEFAULT_MANIPULATION_THRESHOLD = 0.5
DEFAULT_BLUR_KERNEL = 11
DEFAULT_BLUR_SIGMA = 1.0
DEFAULT_MAX_STEPS = 100
# Per method, what differs from the dataclass defaults (the paper's methods differ in nothing).
# The product's method: a victim with more targets takes 2 per step in turn (all are verified).
METHOD_DEFAULTS: dict[str, dict] = {"identity": {"targets_per_step": 2}}
DEFAULT_IDENTITY_WEIGHT = (
    5.0  # on the sample portrait 1.0 left vintage at 0.56; 3.0 broke the edits with thin margins (0.61)
)
DEFAULT_KEEP_WEIGHT = 1.0  # the photo stayed at 0.14 from its owner (kept: < 0.3)
IFGSM_JITTER = 0.001
MAX_COARSE_BLOCK = 64  # pixels; a block wider than a face would move it as one
MAX_SMOOTH_SIGMA = 20.0  # pixels; past this the smoothed gradient is nearly flat over a face

StartKind = Literal["none", "jitter", "uniform", "noise-generator"]
MaskKind = Literal["none", "saliency", "union"]
BlurKind = Literal["none", "gaussian", "eot", "spread-spectrum", "robust", "robust-cycle"]


@dataclass(frozen=True)
class Stages:
    """Which stages of Algorithm 1 are on."""

    start: StartKind = "noise-generator"
    mask: MaskKind = "union"
    ssim: bool = True
    blur: BlurKind = "gaussian"
    # The identity term (attack/identity_objective.py): push each edit's face away from its owner
    # as a face recogniser sees it, keep the protected photo's own face near it.
    identity: bool = False


METHODS: dict[str, Stages] = {
    # I-FGSM from x = I exactly never moves: MSE(G(x), G(I)) has zero gradient at its minimum.
    # Ruiz et al.'s code starts it from U(-0.001, 0.001) for that reason; so does this one.
    "ifgsm": Stages(start="jitter", mask="none", ssim=False, blur="none"),
    "pgd": Stages(start="uniform", mask="none", ssim=False, blur="none"),
    "eot-blur": Stages(start="uniform", mask="none", ssim=False, blur="eot"),
    "spread-spectrum": Stages(start="uniform", mask="none", ssim=False, blur="spread-spectrum"),
    "saliency-aware": Stages(start="uniform", mask="saliency", ssim=False, blur="gaussian"),
    "union-saliency": Stages(start="noise-generator", mask="union", ssim=True, blur="gaussian"),
    # The paper's stages with the blur replaced by an expectation over JPEG, resizing and the blur
    # (attack/blurs.py): aimed at the photo a forger gets after upload, not the file we return.
    "union-saliency-robust": Stages(start="noise-generator", mask="union", ssim=True, blur="robust"),
    # The product's method: the deepfake must fail a face check as the person while the photo
    # passes it (attack/identity_objective.py). The whole face box may move (the union mask
    # left it short after JPEG on CelebA faces), with the SSIM penalty keeping PSNR near 36 dB,
    # and one robust transform per step (JPEG twice as often as the resize).
    "identity": Stages(start="uniform", mask="none", ssim=True, blur="robust-cycle", identity=True),
}
DEFAULT_METHOD = "union-saliency"  # the paper's: AttackConfig() and the evaluation's tables
PRODUCT_METHOD = "identity"  # what the command line and the service run when no method is named


@dataclass(frozen=True)
class AttackConfig:
    """Hyperparameters of one protection run. Defaults are the paper's (docs/method.md §3).

    Args:
        method: name of the attacker (a key of `METHODS`); sets `stages`.
        stages: which stages run; normally derived from `method`.
        epsilon: L-inf bound of the perturbation in generator space ([-1, 1] pixels).
        step_size: I-FGSM step `a`.
        steps: I-FGSM iterations `k`.
        noise_steps / noise_lr: noise generator iterations `K_ng` and rate `eta`.
        alpha / beta: weights of M_sm and M_ma in the union mask.
        gamma: weight of the SSIM penalty in the objective.
        manipulation_threshold: Eq. 2 threshold on max_t sum_c |y_t - I|.
        blur_kernel / blur_sigma: Gaussian blur on the generator's input each step.
        seed: seeds the random start; the same seed gives the same result on CPU.
        targets_per_step: where a victim has more targets than this, each step's gradient takes
            this many of them in turn (round robin), every check measures all; 0: all each step.
        identity_weight / keep_weight: the identity term's weights (the edit's distance from the
            person, and the protected photo's own distance from the person, subtracted).
        momentum / smooth_sigma: the transfer stages (attack/transfer.py), off at 0: MI-FGSM's
            decay mu, and TI-FGSM's Gaussian smoothing of the gradient, in pixels.
        coarse_block: the transfer stage that takes each step on blocks of this many pixels
            square (a lower-frequency parameterisation); 0 or 1: off.
        feature_weight: the feature-level objective's weight (attack/features.py), off at 0: the
            relative change of each victim's encoder activations, added to J.
    """

    method: str = DEFAULT_METHOD
    stages: Stages = METHODS[DEFAULT_METHOD]
    epsilon: float = DEFAULT_EPSILON
    step_size: float = DEFAULT_STEP_SIZE
    steps: int = DEFAULT_STEPS
    noise_steps: int = DEFAULT_NOISE_STEPS
    noise_lr: float = DEFAULT_NOISE_LR
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    gamma: float = DEFAULT_GAMMA
    manipulation_threshold: float = DEFAULT_MANIPULATION_THRESHOLD
    blur_kernel: int = DEFAULT_BLUR_KERNEL
    blur_sigma: float = DEFAULT_BLUR_SIGMA
    seed: int = 0
    targets_per_step: int = 0
    identity_weight: float = DEFAULT_IDENTITY_WEIGHT
    keep_weight: float = DEFAULT_KEEP_WEIGHT
    momentum: float = 0.0
    smooth_sigma: float = 0.0
    coarse_block: int = 0
    feature_weight: float = 0.0

    @classmethod
    def for_method(
        cls, method: str = DEFAULT_METHOD, *, max_steps: int = DEFAULT_MAX_STEPS, **overrides
    ) -> AttackConfig:
        """The paper's configuration of `method`, with `overrides` applied, validated.

        max_steps: the caller's own limit on `steps` (a server passes its configured one, so
            that the limit it advertises is the one applied).
        """
        if method not in METHODS:
            raise InvalidInputError("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        config = cls(method=method, stages=METHODS[method], **{**METHOD_DEFAULTS.get(method, {}), **overrides})
        config.validate(max_steps)
        return config

    def replace(self, **changes) -> AttackConfig:
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self, max_steps: int = DEFAULT_MAX_STEPS) -> None:
        """Raise `InvalidInputError` naming the first unusable field."""
        _finite_in("epsilon", self.epsilon, 0.0, 1.0, low_open=True)
        _finite_in("step_size", self.step_size, 0.0, 2.0, low_open=True)
        _int_in("steps", self.steps, 1, max_steps)
        _int_in("noise_steps", self.noise_steps, 0, max_steps)
        _finite_in("noise_lr", self.noise_lr, 0.0, 1.0)
        _finite_in("alpha", self.alpha, 0.0, 100.0)
        _finite_in("beta", self.beta, 0.0, 100.0)
        _finite_in("gamma", self.gamma, 0.0, 1e6)
        _finite_in("manipulation_threshold", self.manipulation_threshold, 0.0, 6.0)
        _int_in("blur_kernel", self.blur_kernel, 1, 63)
        if self.blur_kernel % 2 == 0:
            raise InvalidInputError("blur_kernel", f"must be odd, got {self.blur_kernel}")
        _finite_in("blur_sigma", self.blur_sigma, 0.0, 50.0, low_open=True)
        _int_in("targets_per_step", self.targets_per_step, 0, 1000)
        _finite_in("identity_weight", self.identity_weight, 0.0, 1e6)
        _finite_in("keep_weight", self.keep_weight, 0.0, 1e6)
        _finite_in("momentum", self.momentum, 0.0, 10.0)
        _finite_in("smooth_sigma", self.smooth_sigma, 0.0, MAX_SMOOTH_SIGMA)
        _int_in("coarse_block", self.coarse_block, 0, MAX_COARSE_BLOCK)
        _finite_in("feature_weight", self.feature_weight, 0.0, 1e6)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not (0 <= self.seed < 2**63):
            raise InvalidInputError("seed", f"must be an integer in [0, 2^63), got {self.seed!r}")


def _finite_in(field: str, value, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(field, f"must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise InvalidInputError(field, f"must lie in {bracket}{low}, {high}], got {value}")


def _int_in(field: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidInputError(field, f"must lie in [{low}, {high}], got {value}")


# -- the product's policy around a method (docs/method.md §4); the paper reproduction uses FIXED ------
DEFAULT_BUDGET_STEPS = 60  # I-FGSM steps in all, over every round of `ensure`
DEFAULT_MARGIN = 0.2  # aim past the verdict's threshold by this share, so the verdict is not a coin toss
MAX_MARGIN = 10.0
# Real (Pillow) processing a verdict may have to survive: these, or any "jpegQ" (Q 1-100) and
# "downscaleF" (F 2-8); see io/processing.py.
PROCESSINGS = ("jpeg95", "jpeg85", "jpeg75", "downscale2")
MAX_PROCESSINGS = 8
PolicyKind = Literal["fixed", "ensure"]


@dataclass(frozen=True)
class Policy:
    """How much work a protection may spend and what it must show for it.

    kind: "fixed" runs the method's `steps` once (the paper); "ensure" continues an image that is
        not yet disrupted by further rounds of `steps` steps from where it stopped, each round
        halving the SSIM weight gamma, the last one moving every pixel of the face box, until every
        target is disrupted with margin or `budget_steps` are spent.
    budget_steps: I-FGSM steps in all (ensure); the first round counts.
    margin: a target counts as disrupted with margin when its output MSE > 0.05 * (1 + margin)
        (under the identity check: its edit's distance from the person >= 0.6 * (1 + margin)).
    early_stop: an image leaves the loop after a step at which every target is disrupted with
        margin (measured on the 8-bit image the caller would receive).
    verify_after: real processing the verdict must also survive (`PROCESSINGS`): success measured
        on G(T(x)) against G(T(I)) for each T.
    """

    kind: str = "fixed"  # PolicyKind: "fixed" or "ensure", checked by validate()
    budget_steps: int = DEFAULT_BUDGET_STEPS
    margin: float = DEFAULT_MARGIN
    early_stop: bool = False
    verify_after: tuple[str, ...] = ()

    def validate(self, max_steps: int = DEFAULT_MAX_STEPS, steps: int = DEFAULT_STEPS) -> None:
        if self.kind not in ("fixed", "ensure"):
            raise InvalidInputError("policy", f"unknown policy {self.kind!r}; choose fixed or ensure")
        _int_in("budget_steps", self.budget_steps, 0, max(max_steps, 0) * 10)
        if self.kind == "ensure" and self.budget_steps < steps:
            raise InvalidInputError(
                "budget_steps", f"must cover the first round's {steps} steps, got {self.budget_steps}"
            )
        _finite_in("margin", self.margin, 0.0, MAX_MARGIN)
        from .io.processing import processing

        if len(self.verify_after) > MAX_PROCESSINGS:
            raise InvalidInputError(
                "verify_after", f"at most {MAX_PROCESSINGS} processings, got {len(self.verify_after)}"
            )
        for name in self.verify_after:
            processing(name)  # refuses unknown names and out-of-range qualities, naming the field

    @property
    def active(self) -> bool:
        """Whether the loop measures disruption as it goes (ensure or early stop)."""
        return self.kind == "ensure" or self.early_stop


FIXED = Policy()
ENSURE = Policy(kind="ensure", early_stop=True)
