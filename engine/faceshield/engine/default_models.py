"""The models used when none is named.

First choice: the demo model set shipped in the package (`repository.BUILTIN_DIR / "demo"`), a
StarGAN and a TRACER trained by `scripts/build_demo_models.py` on procedural synthetic faces.
They really edit (and protect) those faces, and nothing else: they are no defence against a
real deepfake model. Where the package carries no demo set (a build without the assets), the
fallback is the real architectures with fixed-seed, untrained weights, so that the main job
still runs anywhere in seconds. Point the engine at a set made from official checkpoints
(README, "Model sets") for real use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .models.labels import CELEBA_DEFAULT_ATTRIBUTES
from .models.stargan import Generator
from .modelset import ModelSet

log = logging.getLogger(__name__)

DEFAULT_SEED = 20240521
DEFAULT_RESOLUTION = 128
DEFAULT_CONV_DIM = 8
DEFAULT_REPEAT_NUM = 6
UNTRAINED_NOTICE = (
    "using the embedded default models: fixed-seed, UNTRAINED weights for demonstration only; "
    "pass --generator/--models to use official StarGAN and TRACER checkpoints"
)


def build_default_generator(seed: int = DEFAULT_SEED) -> Generator:
    """StarGAN's architecture at a small width, weights drawn from a fixed seed."""
    with torch.random.fork_rng(devices=[]):  # module init draws from the global generator
        torch.manual_seed(seed)
        g = Generator(conv_dim=DEFAULT_CONV_DIM, c_dim=len(CELEBA_DEFAULT_ATTRIBUTES), repeat_num=DEFAULT_REPEAT_NUM)
    return g.eval().requires_grad_(False)


DEMO_NOTICE = (
    "using the built-in demo model set: StarGAN and TRACER trained on synthetic faces only, no "
    "defence against real deepfake models; pass --models with a set imported from the official "
    "checkpoints (faceshield models import) for real use"
)


def demo_model_set_path() -> Path | None:
    """The shipped demo set's directory, or None when this build has none."""
    from .repository import BUILTIN_DIR, DEMO_NAME, MANIFEST_FILE

    path = BUILTIN_DIR / DEMO_NAME
    return path if (path / MANIFEST_FILE).is_file() else None


def build_default_models(with_saliency: bool = True) -> ModelSet:
    """The demo set when shipped, else the seeded untrained models (see the module docstring)."""
    demo = demo_model_set_path()
    if demo is not None:
        from .repository import load_model_set

        models = load_model_set(demo, with_saliency=with_saliency)
        models.description = f"{DEMO_NOTICE} [{models.name} v{models.version}]"
        log.info("default models: the demo set %s %s", models.name, models.version)
        return models
    return build_untrained_models(with_saliency)


def build_untrained_models(with_saliency: bool = True) -> ModelSet:
    """The real architectures with fixed-seed, untrained weights (no files needed)."""
    saliency, saliency_name, providers = None, "none", []
    if with_saliency:
        try:
            from .saliency import build_default_saliency  # TRACER, once it is available
        except ImportError:
            build_default_saliency = None
        if build_default_saliency is not None:
            saliency = build_default_saliency()
            saliency_name = getattr(saliency, "name", "tracer")
            providers = list(getattr(saliency, "providers", []))
    return ModelSet(
        name="embedded-default",
        version=f"seed-{DEFAULT_SEED}",
        generator=build_default_generator(),
        attributes=list(CELEBA_DEFAULT_ATTRIBUTES),
        resolution=DEFAULT_RESOLUTION,
        saliency=saliency,
        saliency_name=saliency_name,
        trained=False,
        description=UNTRAINED_NOTICE,
        providers=providers,
    )
