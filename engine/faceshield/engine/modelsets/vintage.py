"""The real victim FaceShield ships against: vintagify's pretrained CycleGAN (MIT license).

The `vintagify` wheel (0.1.2, by Yusong Zhao and Fangyi Wang, MIT) carries
`vintagify/resources/G_A2B_epoch33.pth`: a CycleGAN ResNet generator (ngf 64, 9 residual blocks,
affine instance norm, biased convolutions, the `model.N.block.M` layout) that its authors trained
at 512 px on real photos to turn modern pictures vintage. Nobody here trained it, which is the
point: a protection measured on it is measured on somebody else's GAN.

FaceShield depends on the package for that file only. It never imports `vintagify` (whose
`__init__` pulls in matplotlib's pyplot); it finds the file through the installed distribution's
record, checks its SHA-256, and turns it into an installed model set of one translator victim,
``vintagify``, in the user's models directory: built once, by `faceshield models prepare`,
atomically, so two processes starting at once leave one whole set.
Until then the default models build it in memory at start-up (a second or two): nothing is
written that nobody asked for.
When the package is missing or its file differs, `vintage_victim` says why and returns None; the
caller carries on with its other victims.
"""

from __future__ import annotations

import dataclasses
import logging
from importlib import metadata
from pathlib import Path

from ..errors import FaceShieldError
from ..models.victims import Victim
from .importer import TranslatorCheckpoint, translator_victim
from .load import load_victim
from .manifest import build_manifest, sha256_file
from .store import read_manifest, user_models_dir, write_model_set

log = logging.getLogger(__name__)

DISTRIBUTION = "vintagify"
WEIGHTS_FILE = "G_A2B_epoch33.pth"
WEIGHTS_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"  # vintagify 0.1.2
VICTIM_NAME = "vintage"
SET_NAME = "vintagify"
DEFAULT_RESOLUTION = 128  # a CPU can attack it at 128 in seconds; 256/512 where a GPU serves
CREDIT = "vintagify 0.1.2 (Yusong Zhao, Fangyi Wang; MIT license), G_A2B_epoch33.pth"
DESCRIPTION = "vintagify's CycleGAN, trained by its authors on real photos (modern to vintage)"


class VintageUnavailable(FaceShieldError):
    """vintagify's weights cannot be used (package missing, file missing or changed)."""


def weights_path() -> Path:
    """The installed wheel's weights file, found through the distribution record (no import);
    `VintageUnavailable` says what is wrong."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise VintageUnavailable(
            f"the {DISTRIBUTION} package is not installed (pip install {DISTRIBUTION}==0.1.2): "
            "protecting against the StarGAN victim alone"
        ) from None
    hits = [f for f in (dist.files or []) if f.name == WEIGHTS_FILE]
    path = Path(str(dist.locate_file(hits[0]))) if hits else None
    if path is None or not path.is_file():
        raise VintageUnavailable(f"{DISTRIBUTION} {dist.version} has no {WEIGHTS_FILE}; reinstall it")
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise VintageUnavailable(
            f"{path} has SHA-256 {digest[:16]}..., not vintagify 0.1.2's {WEIGHTS_SHA256[:16]}...: "
            "the file changed; reinstall vintagify==0.1.2"
        )
    return path


def set_dir(resolution: int = DEFAULT_RESOLUTION) -> Path:
    suffix = "" if resolution == DEFAULT_RESOLUTION else f"-{resolution}"
    return user_models_dir() / f"{SET_NAME}{suffix}"


def prepare(resolution: int = DEFAULT_RESOLUTION, force: bool = False) -> Path:
    """Build (or find) the installed `vintagify` model set; returns its directory."""
    dest = set_dir(resolution)
    if dest.is_dir() and not force:
        try:
            m = read_manifest(dest)
            if m.victims[0].source.get("sha256") == WEIGHTS_SHA256 and m.resolution == resolution:
                return dest
        except FaceShieldError:
            pass
        force = True  # a set of that name that is not ours, or from other weights: rebuild
    source = weights_path()
    victim, diff = translator_victim(TranslatorCheckpoint(VICTIM_NAME, source, resolution))
    victim = dataclasses.replace(victim, description=DESCRIPTION)
    manifest = build_manifest(
        name=dest.name,
        version="0.1.2",
        victims=[victim],
        produced_by={
            "tool": "faceshield models prepare",
            "sources": [victim.source],
            "checks": {"torchscript_max_diff": diff},
            "credit": CREDIT,
        },
        description=f"CycleGAN modern-to-vintage translator from {CREDIT}",
    )
    files = {manifest.victims[0].file: victim.data}
    log.info("writing the %s model set to %s", SET_NAME, dest)
    return write_model_set(dest, manifest, files, overwrite=force, exist_ok=not force)


def vintage_victim(resolution: int = DEFAULT_RESOLUTION) -> Victim | None:
    """The vintage victim: from the installed set when `prepare` has built it, else built in
    memory (nothing is written unasked; `faceshield models prepare` caches it). None, with a
    warning saying why, where it cannot be had."""
    from ..models.torchscript import load_generator_artifact
    from ..models.victims import Unconditional

    try:
        d = set_dir(resolution)
        if d.is_dir():
            entry = read_manifest(d).victims[0]
            if entry.source.get("sha256") == WEIGHTS_SHA256:
                # Named by the weights it was built from, as when built in memory: two builds of
                # the same checkpoint are the same victim though their TorchScript bytes differ.
                return dataclasses.replace(load_victim(d, entry), sha256=WEIGHTS_SHA256)
            log.warning("%s was built from other weights: building the vintagify victim in memory", d)
        victim, _ = translator_victim(TranslatorCheckpoint(VICTIM_NAME, weights_path(), resolution))
        module, _ = load_generator_artifact(victim.data)
        log.info("vintagify victim built in memory; `faceshield models prepare` keeps it for the next start")
        return Victim(
            VICTIM_NAME, "translator", Unconditional(module), resolution, [], WEIGHTS_SHA256, description=DESCRIPTION
        )
    except (FaceShieldError, OSError) as exc:
        log.warning("vintage victim unavailable: %s", exc)
        return None
