"""The folder job's two kinds of work, the same on one machine and on a Ray cluster.

`prepare` (CPU: read, decode with EXIF orientation and colour profile applied, find the faces,
keep the EXIF asked for) and `protect_batch` (the engine on a batch, as the service batches:
one configuration, many images; a batch the engine refuses is retried image by image, so one
bad image fails alone). Each image ends as a record (one JSONL line) and, unless it failed, the
protected PNG. Image bytes are never logged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceshield.engine.errors import FaceShieldError, InvalidInputError

from .batch_job import Item

if TYPE_CHECKING:
    from faceshield.engine.pipeline import ProtectOutcome

# The command-line options that make an engine: a worker process or a Ray actor gets these and
# builds its own (each sets its own PyTorch threads; auto is measured where it runs).
MODEL_OPTIONS = (
    "models",
    "generator",
    "resolution",
    "attributes",
    "device",
    "precision",
    "compile",
    "saliency_runtime",
    "threads",
    "verdict",
)


@dataclass(frozen=True)
class JobOptions:
    """Everything the work needs besides the models; picklable (Ray sends it to its workers)."""

    method: str = "union-saliency"
    epsilon: float = 0.05
    steps: int = 10
    seed: int = 0
    targets: tuple[str, ...] | None = None
    attrs: tuple[float, ...] | None = None
    boxes: tuple[tuple[int, int, int, int], ...] | None = None  # the same boxes for every image
    detect: bool = True
    no_face: str = "refuse"
    keep_metadata: tuple[str, ...] = ()
    policy: dict = field(default_factory=dict)  # Policy's fields
    max_pixels: int = 40_000_000


@dataclass
class Prepared:
    item: Item
    image: np.ndarray | None = None
    boxes: tuple | None = None
    faces: dict = field(default_factory=dict)
    exif: bytes | None = None
    seconds: float = 0.0
    error: dict | None = None  # {"field", "message"} when it failed here


def _error(exc: Exception) -> dict:
    if isinstance(exc, InvalidInputError):
        return {"field": exc.field, "message": exc.description}
    return {"field": "", "message": str(exc) or exc.__class__.__name__}


def prepare(item: Item, options: JobOptions) -> Prepared:
    """Read and decode one file and choose its face boxes; errors are kept, not raised."""
    from faceshield.engine.faces import DetectorUnavailable, choose_faces
    from faceshield.engine.io.images import decode_image
    from faceshield.engine.io.metadata import kept_exif

    t0 = time.perf_counter()
    out = Prepared(item)
    try:
        try:
            data = Path(item.source).read_bytes()
        except OSError as exc:
            raise InvalidInputError("input", f"cannot read the file: {exc.strerror or exc}") from None
        out.image = decode_image(data, max_pixels=options.max_pixels, field="input")
        choice = choose_faces(out.image, options.boxes, options.detect, options.no_face)
        out.boxes = choice.boxes
        out.faces = {"source": choice.source, "detected": len(choice.detected), "dropped": choice.dropped}
        out.exif = kept_exif(data, options.keep_metadata)
    except DetectorUnavailable:
        raise  # every image would fail alike: stop the job and say what to install
    except FaceShieldError as exc:
        out.image, out.error = None, _error(exc)
    except Exception as exc:  # anything else one file can cause fails that file alone
        out.image, out.error = None, {"field": "input", "message": f"unreadable ({exc.__class__.__name__})"}
    out.seconds = time.perf_counter() - t0
    return out


def failure(p: Prepared, error: dict) -> dict:
    return {
        "input": p.item.source,
        "output": p.item.output,
        "status": "failed",
        "error": error,
        "seconds": {"prepare": round(p.seconds, 4)},
    }


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def identity_json(report) -> dict:
    """The identity verdict as JSON: each face kept? each edit's deepfake still the person?"""
    return {
        "faces": [{"face": f.face, "distance": f.distance, "kept": f.kept, "reason": f.reason} for f in report.faces],
        "edits": [
            {
                "victim": e.victim,
                "target": e.target,
                "face": e.face,
                "clean_distance": e.clean,
                "protected_distance": e.protected,
                "state": e.state,
                "after": {p: {"distance": d, "state": e.state_after(p)} for p, d in e.after.items()},
            }
            for e in report.edits
        ],
        "problems": report.problems(),
    }


def record(p: Prepared, outcome, batch_size: int, write_seconds: float = 0.0) -> dict:
    assert p.image is not None  # only images prepared without an error are recorded
    v = outcome.verdict
    return {
        "input": p.item.source,
        "output": p.item.output,
        "status": "protected" if v.protected else "not_protected",
        "verdict": {
            "protected": v.protected,
            "not_disrupted": list(v.not_disrupted),
            "steps": v.steps,
            "rounds": v.rounds,
            "after": dict(v.after),
            "rule": v.rule,
            "identity": None if v.identity is None else identity_json(v.identity),
        },
        "size": [int(p.image.shape[1]), int(p.image.shape[0])],
        "faces": {**p.faces, "boxes": [list(b) for b in outcome.boxes]},
        "input_metrics": _finite(outcome.input.as_dict()),
        "targets": [_finite(t.as_dict()) for t in outcome.targets],
        "seconds": {
            "prepare": round(p.seconds, 4),
            "batch_compute": round(outcome.compute_seconds, 4),
            "batch_size": batch_size,
        },
    }


class Worker:
    """Holds the engine (the models, loaded once) and protects batches of prepared images."""

    def __init__(self, engine, options: JobOptions):
        from faceshield.engine import AttackConfig
        from faceshield.engine.config import Policy

        self.engine = engine
        self.options = options
        self.config = AttackConfig.for_method(
            options.method, epsilon=options.epsilon, steps=options.steps, seed=options.seed
        )
        self.policy = Policy(**options.policy) if options.policy else Policy()

    def _requests(self, batch: list[Prepared]):
        from faceshield.engine import ProtectRequest

        o = self.options
        return [
            ProtectRequest(
                p.image,
                original_attributes=list(o.attrs) if o.attrs else None,
                targets=list(o.targets) if o.targets else None,
                face_box=None if p.boxes is None else [tuple(b) for b in p.boxes],
            )
            for p in batch
        ]

    def protect_batch(self, batch: list[Prepared]) -> list[tuple[dict, bytes | None]]:
        """(record, PNG or None) per prepared image, in order."""
        from faceshield.engine.io.images import encode_png

        ready = [p for p in batch if p.error is None]
        outcomes: dict[int, ProtectOutcome | None] = {}
        if ready:
            try:
                results = self.engine.protect(self._requests(ready), self.config, policy=self.policy)
                outcomes = {p.item.index: r for p, r in zip(ready, results, strict=True)}
            except InvalidInputError:  # one image spoils the batch: each alone, so it fails alone
                for p in ready:
                    try:
                        outcomes[p.item.index] = self.engine.protect(
                            self._requests([p]), self.config, policy=self.policy
                        )[0]
                    except InvalidInputError as exc:
                        p.error = _error(exc)
        out: list[tuple[dict, bytes | None]] = []
        for p in batch:
            if p.error is not None:
                out.append((failure(p, p.error), None))
                continue
            o = outcomes[p.item.index]
            assert o is not None  # None marks a cancelled item; a job cancels nothing
            out.append((record(p, o, len(ready)), encode_png(o.protected, exif=p.exif)))
        return out


def engine_from_options(model_options: dict, options: JobOptions):
    """An engine built from `MODEL_OPTIONS` values, as `faceshield protect` builds its own: in a
    Ray actor or a worker process of the folder job, each holding its models."""
    import argparse

    from faceshield.engine import FaceShieldEngine
    from faceshield.engine.pipeline import Limits

    from .common import load_models, resolve_device

    args = argparse.Namespace(**model_options)
    return FaceShieldEngine(
        load_models(args),
        device=resolve_device(args.device),
        limits=Limits(max_pixels=options.max_pixels),
        compile=args.compile,
        precision=args.precision,
        verdict=args.verdict or "identity",
    )
