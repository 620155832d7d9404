"""The rows of the paper's tables, as data: which attack configuration each row runs.

Tables I and II compare attackers (docs/method.md §3's methods); Table III adds the paper's components one
at a time to its baseline. Every row is a `Stages` value, so the runner has one code path, and
two rows with the same stages (the spread-spectrum method and the ablation baseline) share
their results instead of being computed twice.

Table III mapping (paper IV-E): "baseline is Spread-Spectrum attack [12]", so every ablation row
keeps the baseline's uniform start and Ruiz's blur schedule and switches on exactly the
components its name lists (saliency mask, union mask, noise generator, SSIM loss). The paper
equates its last row with the proposed framework, whose blur is the fixed Gaussian 11/1.0 of
IV-A; `union-saliency (method)` is reported beside it so that the blur's own effect is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import FIXED, METHODS, Policy, Stages

TABLE_METHODS = "methods"
TABLE_ABLATION = "ablation"
TABLE_POLICIES = "policies"  # beyond the paper: verified (ensure), early stop, the robust stage


@dataclass(frozen=True)
class PaperFigures:
    """The paper's numbers for a row (Tables I-III, "Average" column where it has one)."""

    l1: float
    l2: float
    psnr: float
    ssim: float


@dataclass(frozen=True)
class Row:
    """One table row: a key (CLI name), the label the paper uses, and the stages it runs."""

    key: str
    label: str
    table: str
    stages: Stages
    paper: PaperFigures | None = None
    policy: Policy = field(default=FIXED)
    method: str = ""  # the named method these stages are (reported as the attack's method)

    @property
    def needs_saliency(self) -> bool:
        return self.stages.mask in ("saliency", "union")

    @property
    def work_key(self) -> str:
        return stage_key(self.stages) + policy_key(self.policy)


def stage_key(stages: Stages) -> str:
    """A stable name for a configuration of stages; results are stored under it."""
    return f"start={stages.start},mask={stages.mask},ssim={'on' if stages.ssim else 'off'},blur={stages.blur}"


def policy_key(policy: Policy) -> str:
    """ "" for the paper's fixed schedule (so older runs keep their keys), else the policy's settings."""
    if policy == FIXED:
        return ""
    after = "+".join(policy.verify_after) or "-"
    return f",policy={policy.kind},budget={policy.budget_steps},margin={policy.margin:g},early={int(policy.early_stop)},after={after}"


_BASE = METHODS["spread-spectrum"]

METHOD_ROWS: tuple[Row, ...] = (
    Row("ifgsm", "I-FGSM", TABLE_METHODS, METHODS["ifgsm"], PaperFigures(0.019, 0.087, 33.616, 0.943)),
    Row("pgd", "PGD (Ruiz)", TABLE_METHODS, METHODS["pgd"]),
    Row("eot-blur", "EoT-Blur", TABLE_METHODS, METHODS["eot-blur"], PaperFigures(0.020, 0.089, 33.536, 0.938)),
    Row(
        "spread-spectrum",
        "Spread-Spectrum",
        TABLE_METHODS,
        METHODS["spread-spectrum"],
        PaperFigures(0.017, 0.071, 34.520, 0.954),
    ),
    Row(
        "saliency-aware",
        "Saliency-Aware",
        TABLE_METHODS,
        METHODS["saliency-aware"],
        PaperFigures(0.016, 0.068, 34.708, 0.955),
    ),
    Row(
        "union-saliency",
        "Union-Saliency",
        TABLE_METHODS,
        METHODS["union-saliency"],
        PaperFigures(0.015, 0.058, 35.437, 0.964),
    ),
)

ABLATION_ROWS: tuple[Row, ...] = (
    Row("b", "baseline", TABLE_ABLATION, _BASE, PaperFigures(0.0169, 0.0714, 34.5212, 0.9541)),
    Row(
        "b+s",
        "baseline+Saliency mask",
        TABLE_ABLATION,
        Stages("uniform", "saliency", False, "spread-spectrum"),
        PaperFigures(0.0167, 0.0697, 34.6044, 0.9544),
    ),
    Row(
        "b+u",
        "baseline+Union mask",
        TABLE_ABLATION,
        Stages("uniform", "union", False, "spread-spectrum"),
        PaperFigures(0.0167, 0.0703, 34.5748, 0.9531),
    ),
    Row(
        "b+u+n",
        "baseline+Union mask+Noise generator",
        TABLE_ABLATION,
        Stages("noise-generator", "union", False, "spread-spectrum"),
        PaperFigures(0.0167, 0.0702, 34.5756, 0.9532),
    ),
    Row(
        "b+s+n+l",
        "baseline+Saliency mask+Noise generator+L_ssim",
        TABLE_ABLATION,
        Stages("noise-generator", "saliency", True, "spread-spectrum"),
        PaperFigures(0.0149, 0.0584, 35.3852, 0.9635),
    ),
    Row(
        "b+u+n+l",
        "baseline+Union mask+Noise generator+L_ssim",
        TABLE_ABLATION,
        Stages("noise-generator", "union", True, "spread-spectrum"),
        PaperFigures(0.0147, 0.0580, 35.4274, 0.9636),
    ),
    # Not a row of the paper: the method itself (Gaussian blur instead of Ruiz's schedule).
    Row("full", "union-saliency (method, Gaussian blur)", TABLE_ABLATION, METHODS["union-saliency"]),
)


def _policy_row(key: str, label: str, method: str, policy: Policy = FIXED) -> Row:
    """A named method run under a product policy (never a row of the paper)."""
    return Row(key, label, TABLE_POLICIES, METHODS[method], policy=policy, method=method)


_EARLY = Policy(early_stop=True)
_ENSURE = Policy(kind="ensure", early_stop=True)
_ENSURE_AFTER_PROCESSING = Policy(kind="ensure", early_stop=True, verify_after=("jpeg75", "downscale2"))
POLICY_ROWS: tuple[Row, ...] = (
    _policy_row("union-saliency+early", "Union-Saliency, fixed schedule with early stop", "union-saliency", _EARLY),
    _policy_row("union-saliency+ensure", "Union-Saliency, verified (ensure)", "union-saliency", _ENSURE),
    _policy_row("union-saliency-robust", "Union-Saliency, robust stage", "union-saliency-robust"),
    _policy_row(
        "union-saliency-robust+ensure",
        "Union-Saliency, robust stage, verified after JPEG q75 and 0.5x resize",
        "union-saliency-robust",
        _ENSURE_AFTER_PROCESSING,
    ),
    _policy_row("pgd+early", "PGD (Ruiz), fixed schedule with early stop", "pgd", _EARLY),
    _policy_row("pgd+ensure", "PGD (Ruiz), verified (ensure)", "pgd", _ENSURE),
)

ALL_ROWS: dict[str, Row] = {r.key: r for r in METHOD_ROWS + ABLATION_ROWS + POLICY_ROWS}
DEFAULT_FIGURE_ROW = "union-saliency"
# The paper's ordering of Table II by PSNR and by SSIM, worst to best.
PAPER_PSNR_ORDER = ("eot-blur", "ifgsm", "spread-spectrum", "saliency-aware", "union-saliency")
