"""Options and helpers shared by the subcommands (model selection, image files).

Imported by every subcommand at start-up, so it imports nothing heavy at module level: numpy,
PyTorch and the engine's model code are imported by the functions that use them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceshield.engine.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from faceshield.engine.config import Policy
    from faceshield.engine.modelset import ModelSet


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        metavar="PATH_OR_NAME",
        help="model set directory or installed name (default: the published real victims, vintage and styles; "
        "'demo': the toy StarGAN set)",
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
        help="arithmetic of the gradient steps: auto (default: bf16 autocast on a CUDA device or a CPU that has "
        "it natively, else fp32); checks, metrics and verdicts always run in fp32",
    )
    parser.add_argument(
        "--threads",
        default="auto",
        metavar="N",
        help="CPU threads for PyTorch: auto (default: the cores other work leaves idle, watched for a quarter "
        "second at start; at least 1) or a number. Two threads on a machine where another job runs can be several times "
        "slower than one (benchmarks/results/cpu-speed.md)",
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


BUSY_WINDOW = 0.25  # seconds /proc/stat is watched for: 50 ticks of 2 cores at 100 Hz, a few ms of CPU


def busy_cores(window: float = BUSY_WINDOW, stat: str = "/proc/stat") -> float | None:
    """How many cores other processes keep busy now: the machine's non-idle CPU time over a short
    window, from /proc/stat (this process sleeps meanwhile); None where that file is missing.

    Not the load average: its 1-minute mean lags, and right after any job (the previous photo's
    protection, `models prepare`) it still reads "busy" for a minute or more, which sent the next
    protection of an idle 2-core box to one thread: 31 s instead of 19.5 s for the main job."""
    import time

    def sample() -> tuple[int, int]:
        with open(stat, encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle  # user .. steal (guest time is already counted in user)

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    spent = total1 - total0
    if spent <= 0:
        return None
    return (1.0 - (idle1 - idle0) / spent) * (os.cpu_count() or 1)  # /proc/stat's first line: every CPU


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def choose_threads(value: str) -> int:
    """--threads: a number, or "auto": the cores other work leaves idle now (`busy_cores`; the load
    average where /proc/stat is missing), at least one."""
    cores = usable_cores()
    if value != "auto":
        if not value.isdigit() or int(value) < 1:
            raise InvalidInputError("threads", f"expected auto or a positive integer, got {value!r}")
        return int(value)
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.5)))


def apply_threads(args: argparse.Namespace) -> int:
    import torch

    n = choose_threads(getattr(args, "threads", "auto"))
    torch.set_num_threads(n)
    return n


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_models(args: argparse.Namespace) -> ModelSet:
    """The model set the options name; the default (the published real victims, vintage and
    styles, with the demo set's TRACER) when none is named, with a note on stderr saying so."""
    device = resolve_device(getattr(args, "device", "cpu"))
    runtime = getattr(args, "saliency_runtime", "auto")
    if device == "cpu":
        apply_threads(args)
    from faceshield.engine.modelset import ModelSet

    if getattr(args, "generator", None):
        from faceshield.engine.models.labels import CELEBA_DEFAULT_ATTRIBUTES
        from faceshield.engine.models.stargan import load_generator
        from faceshield.engine.modelsets import load_saliency_only
        from faceshield.engine.modelsets.defaults import demo_model_set_path

        attributes = args.attributes.split(",") if args.attributes else list(CELEBA_DEFAULT_ATTRIBUTES)
        generator = load_generator(args.generator, c_dim=len(attributes))
        demo = demo_model_set_path()  # TRACER only: the checkpoint brings its own generator
        saliency = None if demo is None else load_saliency_only(demo, device=device, saliency_runtime=runtime)
        return ModelSet(
            name=Path(args.generator).name,
            version="checkpoint",
            generator=generator,
            attributes=attributes,
            resolution=getattr(args, "resolution", 128),
            saliency=saliency,
            saliency_name="none" if saliency is None else saliency.name,
            trained=True,
            description=f"StarGAN checkpoint {args.generator}",
            providers=[] if saliency is None else list(saliency.providers),
        )
    if getattr(args, "models", None):
        from faceshield.engine.modelsets import load_model_set

        return load_model_set(args.models, device=device, saliency_runtime=runtime)
    from faceshield.engine.modelsets.defaults import build_default_models

    models = build_default_models(device=device, saliency_runtime=runtime)
    print(f"note: {models.description}", file=sys.stderr)
    return models


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """--policy and its budget, margin, early stop and processing (docs/method.md §4)."""
    from faceshield.engine.config import DEFAULT_BUDGET_STEPS, DEFAULT_MARGIN, PROCESSINGS

    parser.add_argument(
        "--policy",
        choices=("ensure", "fixed"),
        default="ensure",
        help="ensure (default): further rounds until every edit is disrupted with margin or the budget is spent; "
        "fixed: the method's steps once (the paper)",
    )
    parser.add_argument(
        "--budget-steps",
        type=int,
        default=None,
        help=f"I-FGSM steps in all under ensure (default {DEFAULT_BUDGET_STEPS}, or --steps where that is more)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help="aim past the verdict's threshold by this share: an edit's distance from the person >= 0.6 x (1 + margin) "
        f"under the identity verdict, output MSE > 0.05 x (1 + margin) under the disruption one (default {DEFAULT_MARGIN})",
    )
    parser.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop an image as soon as every edit is disrupted with margin (default: on with ensure, off with fixed)",
    )
    parser.add_argument(
        "--verify-after",
        default="",
        metavar="P,...",
        help=f"real processing the verdict must survive, comma-separated: {', '.join(PROCESSINGS)}",
    )


def policy_from(args: argparse.Namespace, config) -> Policy:
    from faceshield.engine.config import Policy

    early = args.early_stop if args.early_stop is not None else args.policy == "ensure"
    after = tuple(p for p in args.verify_after.split(",") if p)
    from faceshield.engine.config import DEFAULT_BUDGET_STEPS

    budget = args.budget_steps if args.budget_steps is not None else max(DEFAULT_BUDGET_STEPS, config.steps)
    policy = Policy(kind=args.policy, budget_steps=budget, margin=args.margin, early_stop=early, verify_after=after)
    policy.validate(steps=config.steps)
    return policy


def read_image(path: str, max_pixels: int) -> np.ndarray:
    from faceshield.engine.io.images import decode_image

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("input", f"{path} does not exist or is not a file")
    return decode_image(p.read_bytes(), max_pixels=max_pixels, field="input")
