"""Options and helpers shared by the subcommands (model selection, image files).

Imported by every subcommand at start-up, so it imports nothing heavy at module level: numpy,
PyTorch and the engine's model code are imported by the functions that use them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceshield.engine.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from faceshield.engine.modelset import ModelSet


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", metavar="PATH_OR_NAME", help="model set directory or installed name (default: the embedded default)"
    )
    parser.add_argument(
        "--generator", metavar="CKPT", help="official StarGAN generator checkpoint (e.g. 200000-G.ckpt)"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=128,
        metavar="PX",
        help="input size of --generator (official checkpoints: 128 or 256; default 128)",
    )
    parser.add_argument(
        "--attributes",
        metavar="A,B,...",
        help="attribute names of --generator, comma-separated (default: the CelebA five)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (default)")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "tf32", "bf16"),
        default="auto",
        help="generator arithmetic: auto (default: bf16 autocast on a CUDA device that has it, else fp32)",
    )
    parser.add_argument(
        "--compile",
        choices=("none", "default", "reduce-overhead", "max-autotune"),
        default="none",
        help="run the generator under torch.compile in this mode (default none; each new batch shape "
        "compiles once, tens of seconds: worth it for a server, not for one image)",
    )
    parser.add_argument(
        "--saliency-runtime",
        choices=("auto", "onnxruntime", "torch"),
        default="auto",
        help="what runs TRACER from a --models set: auto (default; PyTorch on a CUDA device when "
        "ONNX Runtime has no CUDA provider and the set has PyTorch weights), onnxruntime, torch",
    )


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_models(args: argparse.Namespace) -> ModelSet:
    """The model set the options name; the default (the shipped demo set) when none is named,
    with a note on stderr saying so."""
    from faceshield.engine.modelset import ModelSet

    if getattr(args, "generator", None):
        from faceshield.engine.default_models import build_default_models
        from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES
        from faceshield.engine.models.stargan import load_generator

        attributes = args.attributes.split(",") if args.attributes else list(CELEBA_DEFAULT_ATTRIBUTES)
        generator = load_generator(args.generator, c_dim=len(attributes))
        base = build_default_models()
        return ModelSet(
            name=Path(args.generator).name,
            version="checkpoint",
            generator=generator,
            attributes=attributes,
            resolution=getattr(args, "resolution", 128),
            saliency=base.saliency,
            saliency_name=base.saliency_name,
            trained=True,
            description=f"StarGAN checkpoint {args.generator}",
            providers=base.providers,
        )
    if getattr(args, "models", None):
        from faceshield.engine.repository import load_model_set

        return load_model_set(
            args.models,
            device=resolve_device(getattr(args, "device", "cpu")),
            saliency_runtime=getattr(args, "saliency_runtime", "auto"),
        )
    from faceshield.engine.default_models import build_default_models

    models = build_default_models()
    if models.trained:  # the demo set; for the untrained fallback, callers print its description
        print(f"note: {models.description}", file=sys.stderr)
    return models


def read_image(path: str, max_pixels: int) -> np.ndarray:
    from faceshield.engine.io.images import decode_image

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("input", f"{path} does not exist or is not a file")
    return decode_image(p.read_bytes(), max_pixels=max_pixels, field="input")
