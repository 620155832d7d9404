"""The embedded default models: the real architectures with fixed-seed, untrained weights.

They exist so that the main job runs anywhere in seconds without downloads. They are not
trained: the protection they produce is real arithmetic against a random StarGAN, not a
defence against a real deepfake model. Point the engine at official checkpoints (README,
"Official checkpoints") for real use.
"""

from __future__ import annotations

import torch

from .models.labels import CELEBA_DEFAULT_ATTRIBUTES
from .models.stargan import Generator
from .modelset import ModelSet

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


def build_default_models(with_saliency: bool = True) -> ModelSet:
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
