"""`faceshield protect IN -o OUT`: protect one image file, write a lossless PNG, print metrics."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from faceshield.engine import METHODS
from faceshield.engine.errors import InvalidInputError

from .common import add_model_options, load_models, read_image, resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protect", help="protect one face image", description=__doc__)
    p.add_argument("input", help="PNG or JPEG image")
    p.add_argument("-o", "--output", required=True, help="where to write the protected PNG")
    p.add_argument("--method", default="union-saliency", choices=list(METHODS))
    p.add_argument("--epsilon", type=float, default=0.05, help="L-inf bound in [-1, 1] pixel units (default 0.05)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", help="attributes to protect against, comma-separated (default: all)")
    p.add_argument("--attrs", help="the image's original attribute values, comma-separated 0/1")
    p.add_argument("--box", help="face box left,top,right,bottom (default: centre square)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_model_options(p)
    p.set_defaults(func=run)


def _ints(text: str | None, field: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInputError(field, f"expected comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
    from faceshield.engine.io.images import encode_png
    from faceshield.engine.pipeline import Limits

    # Cheap checks first: parameters, then the image, then the (slower) model load.
    config = AttackConfig.for_method(args.method, epsilon=args.epsilon, steps=args.steps, seed=args.seed)
    limits = Limits()
    image = read_image(args.input, limits.max_pixels)
    models = load_models(args)
    engine = FaceShieldEngine(
        models, device=resolve_device(args.device), limits=limits, compile=args.compile, precision=args.precision
    )
    request = ProtectRequest(
        image,
        original_attributes=_ints(args.attrs, "attrs"),
        targets=args.targets.split(",") if args.targets else None,
        face_box=tuple(_ints(args.box, "box")) if args.box else None,
    )
    outcome = engine.protect([request], config)[0]
    out = Path(args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(encode_png(outcome.protected))
    except OSError as exc:
        raise InvalidInputError("output", f"cannot write {out}: {exc.strerror}") from None
    info = engine.info()
    report = {
        "output": str(out),
        "method": args.method,
        "models": {"name": models.name, "version": models.version, "trained": models.trained},
        "execution": {k: info[k] for k in ("device", "precision", "compile", "saliency_runtime")},
        "input": _finite(outcome.input.as_dict()),
        "targets": [_finite(t.as_dict()) for t in outcome.targets],
        "success_rate": sum(t.success for t in outcome.targets) / len(outcome.targets),
        "seconds": round(outcome.compute_seconds, 3),
    }
    if not models.trained:
        print(f"note: {models.description}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        i = outcome.input
        print(f"wrote {out} ({image.shape[1]}x{image.shape[0]}, method {args.method}, {report['seconds']} s)")
        print(f"input   PSNR {i.psnr:.2f} dB  SSIM {i.ssim:.4f}  L1 {i.l1:.5f}  L2 {i.l2:.5f}  Linf {i.linf:.4f}")
        for t in outcome.targets:
            print(f"target  {t.target:<12} output MSE {t.mse:.4f}  {'disrupted' if t.success else 'not disrupted'}")
    return 0


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
