"""The models used when none is named: the demo set, plus the real victim where it is installed.

- The demo set (`BUILTIN_DIR / "demo"`): a small StarGAN and a TRACER that
  `scripts/build_demo_models.py` trained on procedural synthetic faces. It is a toy: its StarGAN
  is disrupted only by high-frequency noise, so union-saliency (smooth, face-confined) leaves it
  unmoved; its TRACER gives the saliency mask for real photos too.
- The vintagify victim (`modelsets.vintage`): a CycleGAN trained by other people on real photos,
  the victim a protection claim is measured on.

Where the package carries no demo set (a build without the assets), the fallback is the real
architectures with fixed-seed, untrained weights, so that the main job still runs anywhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..defaults import EMBEDDED_SEED
from ..models.labels import CELEBA_DEFAULT_ATTRIBUTES
from ..models.stargan import Generator
from ..modelset import ModelSet
from .manifest import MANIFEST_FILE
from .store import BUILTIN_DIR, DEMO_NAME

log = logging.getLogger(__name__)

EMBEDDED_RESOLUTION = 128
EMBEDDED_CONV_DIM = 8
EMBEDDED_REPEAT_NUM = 6
UNTRAINED_NOTICE = (
    "using the embedded default models: fixed-seed, UNTRAINED weights for demonstration only; "
    "pass --generator/--models to use official StarGAN and TRACER checkpoints"
)
DEMO_NOTICE = (
    "using the default models: the built-in demo model set (a StarGAN and TRACER trained on synthetic "
    "faces; the StarGAN is a toy that smooth perturbations do not disrupt) and, where installed, vintagify's "
    "CycleGAN (a real GAN trained by others on real photos)"
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
    vintage: bool = True,
    providers: list[str] | None = None,
    device: str | torch.device = "cpu",
    saliency_runtime: str = "auto",
) -> ModelSet:
    """The demo set (else the seeded untrained models) plus, with `vintage`, vintagify's
    translator where it is installed (see the module docstring)."""
    demo = demo_model_set_path()
    if demo is None:
        models = build_untrained_models(with_saliency)
    else:
        from .load import load_model_set

        models = load_model_set(
            demo, with_saliency=with_saliency, providers=providers, device=device, saliency_runtime=saliency_runtime
        )
        models.description = f"{DEMO_NOTICE} [{models.name} v{models.version}]"
        for v in models.victims:
            v.description = DEMO_VICTIM
    if vintage:
        from .vintage import vintage_victim

        victim = vintage_victim()
        if victim is not None:
            models = models.with_victims([victim])
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
