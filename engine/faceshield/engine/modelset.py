"""A loaded model set: the victim generators to protect against and the saliency model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .models.victims import Victim, check_victims, set_attributes

SaliencyFn = Callable[[torch.Tensor], torch.Tensor]


class ModelSet:
    """What the engine needs to know about the models it runs.

    victims: the generators to disrupt (`models.victims.Victim`), at least one.
    saliency: TRACER or any (N, 3, h, w) [0, 1] -> (N, 1, h', w') callable; None if absent.

    `ModelSet(name, version, generator, attributes, resolution)` is the short form of a set with
    one StarGAN victim named "stargan" (the common case, and how tests build tiny sets).
    """

    def __init__(
        self,
        name: str,
        version: str,
        generator: torch.nn.Module | Callable | None = None,
        attributes: Sequence[str] = (),
        resolution: int = 128,
        saliency: SaliencyFn | None = None,
        saliency_name: str = "none",
        hashes: dict[str, str] | None = None,
        trained: bool = True,
        description: str = "",
        providers: Sequence[str] = (),
        victims: Sequence[Victim] | None = None,
    ):
        if victims is None:
            if generator is None:
                raise ValueError("ModelSet needs victims, or one StarGAN generator with its attributes")
            victims = [Victim("stargan", "stargan", generator, int(resolution), list(attributes))]
        elif generator is not None:
            raise ValueError("give victims or generator, not both")
        check_victims(victims)
        self.name, self.version = name, version
        self.victims = list(victims)
        self.saliency, self.saliency_name = saliency, saliency_name
        self.hashes = dict(hashes or {})
        self.trained, self.description = trained, description
        self.providers = list(providers)

    @property
    def attributes(self) -> list[str]:
        """Every StarGAN victim's attribute names (what a request's original attributes list)."""
        return set_attributes(self.victims)

    @property
    def resolution(self) -> int:
        """The largest victim resolution: the masks' resolution (M_sm is computed once, at it)."""
        return max(v.resolution for v in self.victims)

    @property
    def generator(self) -> torch.nn.Module | Callable:
        """The one victim's generator, for sets of a single victim."""
        if len(self.victims) != 1:
            raise AttributeError(f"model set {self.name} has {len(self.victims)} victims; use .victims")
        return self.victims[0].generator

    @property
    def targets(self) -> list[str]:
        return [t for v in self.victims for t in v.targets]

    def with_victims(self, extra: Sequence[Victim], description: str | None = None) -> ModelSet:
        """This set with more victims (e.g. the demo set plus the vintagify translator)."""
        return ModelSet(
            self.name,
            self.version,
            saliency=self.saliency,
            saliency_name=self.saliency_name,
            hashes={**self.hashes, **{f"victim:{v.name}": v.sha256 for v in extra if v.sha256}},
            trained=self.trained,
            description=self.description if description is None else description,
            providers=self.providers,
            victims=[*self.victims, *extra],
        )
