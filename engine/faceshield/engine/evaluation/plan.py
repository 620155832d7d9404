"""What an evaluation is asked to do (`EvaluationPlan`) and how far it got (`Progress`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import AttackConfig
from ..errors import InvalidInputError
from .names import PROTOCOLS
from .robustness import resolve_transforms
from .rows import ALL_ROWS, DEFAULT_FIGURE_ROW, METHOD_ROWS


@dataclass(frozen=True)
class EvaluationPlan:
    """What to evaluate. `attack` carries the hyperparameters; each row sets the stages."""

    rows: tuple[str, ...] = tuple(r.key for r in METHOD_ROWS)
    protocols: tuple[str, ...] = PROTOCOLS
    sizes: tuple[int, ...] = (50,)
    targets: tuple[str, ...] | None = None
    transforms: tuple[str, ...] = ()
    seed: int = 0
    batch_size: int = 8
    figures: int = 4
    figure_row: str = DEFAULT_FIGURE_ROW
    attack: AttackConfig = field(default_factory=AttackConfig)

    @property
    def n(self) -> int:
        return max(self.sizes)

    def validate(self) -> None:
        unknown = [r for r in self.rows if r not in ALL_ROWS]
        if unknown:
            raise InvalidInputError("methods", f"unknown row {unknown[0]!r}; choose from {', '.join(ALL_ROWS)}")
        if not self.rows:
            raise InvalidInputError("methods", "nothing to evaluate: name at least one method or ablation row")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            raise InvalidInputError("protocol", f"choose per-target, joint or both, got {list(self.protocols)}")
        if not self.sizes or any(not isinstance(s, int) or s < 1 for s in self.sizes):
            raise InvalidInputError("n", f"sample sizes must be positive integers, got {list(self.sizes)}")
        if not 1 <= self.batch_size <= 256:
            raise InvalidInputError("batch", f"must lie in [1, 256], got {self.batch_size}")
        if self.figures < 0:
            raise InvalidInputError("figures", f"must be 0 or more, got {self.figures}")
        if self.figure_row not in ALL_ROWS:
            raise InvalidInputError("figure_row", f"unknown row {self.figure_row!r}")
        resolve_transforms(self.transforms)
        self.attack.validate()


@dataclass
class Progress:
    """Work done so far, weighted by generator passes so that the ETA means something."""

    done_items: int = 0
    total_items: int = 0
    done_work: float = 0.0
    total_work: float = 0.0
    label: str = ""
