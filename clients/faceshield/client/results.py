"""Plain result objects over the response messages (the message stays available as `.response`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceshield.v1 import faceshield_pb2 as pb

from .errors import FaceShieldError
from .images import decode_png


@dataclass(frozen=True)
class TargetResult:
    """One edit of one victim on one face: does G(x, c_t) differ enough from G(I, c_t)?
    `success`: output MSE > 0.05 (pixels in [-1, 1])."""

    target: str
    l1: float
    mse: float
    success: bool
    masked_mse: float
    masked_success: bool
    edited_fraction: float
    victim: str = ""
    face: int = 0
    output_ssim: float = 1.0  # near 1 beside a large mse: a tone shift of a clean edit


@dataclass(frozen=True)
class EditIdentity:
    """One edit of one face, judged by dlib's face recogniser against the person: `state` is
    "broken" (the deepfake fails to match, distance >= 0.6), "passes", "no identity to break"
    or "not measured"; `after`: processing -> (distance, state) of the edit made after it."""

    victim: str
    target: str
    face: int
    clean_distance: float
    protected_distance: float
    state: str
    after: dict[str, tuple[float, str]]


@dataclass(frozen=True)
class Verdict:
    """Whether the delivered image is protected, and what it took.

    rule "identity": every face still matches its owner (`faces_kept`) and every edit's deepfake
    fails to (`identity`); rule "disruption": every edit's output MSE > 0.05 (`disrupted`)."""

    protected: bool
    not_disrupted: tuple[str, ...]  # "victim/target" ("@face" past the first face)
    steps: int
    rounds: int
    after: dict[str, bool]  # processing -> every edit still disrupted after it
    rule: str = "disruption"
    disrupted: bool = False
    identity: tuple[EditIdentity, ...] = ()
    faces_kept: tuple[float | None, ...] = ()  # per face: distance of the protected photo from its owner
    problems: tuple[str, ...] = ()


FACE_SOURCES = {
    pb.FACE_SOURCE_GIVEN: "given",
    pb.FACE_SOURCE_CENTRE: "centre",
    pb.FACE_SOURCE_DETECTED: "detected",
    pb.FACE_SOURCE_NO_FACE_CENTRE: "no-face-centre",
}


def _targets(rows: Sequence[pb.TargetMetrics]) -> list[TargetResult]:
    return [
        TargetResult(
            t.target,
            t.l1,
            t.mse,
            t.success,
            t.masked_mse,
            t.masked_success,
            t.edited_fraction,
            t.victim,
            t.face,
            t.output_ssim,
        )
        for t in rows
    ]


def _verdict(v: pb.Verdict) -> Verdict:
    edits = tuple(
        EditIdentity(
            e.victim,
            e.target,
            e.face,
            e.clean_distance,
            e.protected_distance,
            e.state,
            {p: (d, e.after_state[p]) for p, d in e.after_distance.items()},
        )
        for e in v.identity.edits
    )
    kept = tuple(f.distance if f.measured else None for f in v.identity.faces)
    return Verdict(
        v.protected,
        tuple(v.not_disrupted),
        v.steps,
        v.rounds,
        dict(v.after),
        v.rule or "disruption",
        v.disrupted,
        edits,
        kept,
        tuple(v.identity.problems),
    )


def _policy(p: pb.Policy) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "budget_steps": p.budget_steps,
        "margin": p.margin,
        "early_stop": p.early_stop,
        "verify_after": list(p.verify_after),
    }


def _input(m: pb.InputMetrics) -> dict[str, float]:
    return {"l1": m.l1, "l2": m.l2, "mse": m.mse, "linf": m.linf, "psnr": m.psnr, "ssim": m.ssim}


def _timings(t: pb.Timings) -> dict[str, float]:
    return {
        "queue_seconds": t.queue_seconds,
        "compute_seconds": t.compute_seconds,
        "total_seconds": t.total_seconds,
        "batch_size": t.batch_size,
    }


def _models(m: pb.ModelVersions) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "trained": m.trained,
        "saliency": m.saliency,
        "hashes": dict(m.hashes),
    }


@dataclass(frozen=True)
class ProtectResult:
    request_id: str
    png: bytes  # the protected image, lossless PNG at the original's size
    width: int
    height: int
    input_metrics: dict[str, float]
    targets: list[TargetResult]
    success_rate: float
    masked_success_rate: float
    attack: dict[str, Any]
    models: dict[str, Any]
    timings: dict[str, float]
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (R, R) float32
    generator_outputs: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # target -> (G(I), G(x)) PNGs
    verdict: Verdict = Verdict(False, (), 0, 0, {})
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)  # the face boxes used
    # Where `faces` came from: "given", "centre", "detected", "no-face-centre" ("" from an older server).
    face_source: str = ""
    faces_detected: int = 0  # with detect_faces: faces found (past 32, the smallest are not in `faces`)
    response: pb.ProtectImageResponse | None = field(default=None, repr=False, compare=False)

    @property
    def protected(self) -> bool:
        """Every edit of every victim disrupted on the delivered image (the verdict)."""
        return self.verdict.protected

    @classmethod
    def from_response(cls, r: pb.ProtectImageResponse) -> ProtectResult:
        a = r.attack
        return cls(
            request_id=r.request_id,
            png=r.protected_png,
            width=r.width,
            height=r.height,
            input_metrics=_input(r.input_metrics),
            targets=_targets(r.target_metrics),
            success_rate=r.success_rate,
            masked_success_rate=r.masked_success_rate,
            attack={
                "method": a.method,
                "epsilon": a.epsilon,
                "steps": a.steps,
                "step_size": a.step_size,
                "seed": a.seed,
                "targets": list(a.targets),
                "policy": _policy(a.policy),
            },
            models=_models(r.models),
            timings=_timings(r.timings),
            masks={m.name: np.frombuffer(m.float32, dtype="<f4").reshape(m.height, m.width) for m in r.masks},
            generator_outputs=_outputs(r.generator_outputs),
            verdict=_verdict(r.verdict),
            faces=[(b.left, b.top, b.right, b.bottom) for b in r.faces],
            face_source=FACE_SOURCES.get(r.face_source, ""),
            faces_detected=r.faces_detected,
            response=r,
        )

    def save(self, path: str | Path) -> Path:
        """Write the protected PNG."""
        p = Path(path)
        p.write_bytes(self.png)
        return p

    def to_numpy(self) -> np.ndarray:
        """The protected image, (H, W, 3) uint8 (needs Pillow)."""
        return decode_png(self.png)


@dataclass(frozen=True)
class EvaluateResult:
    request_id: str
    input_metrics: dict[str, float]
    targets: list[TargetResult]
    success_rate: float
    masked_success_rate: float
    protected_by_server: bool
    png: bytes  # the server's protected image, when it made one
    models: dict[str, Any]
    timings: dict[str, float]
    response: pb.EvaluateResponse | None = field(default=None, repr=False, compare=False)
    verdict: Verdict = Verdict(False, (), 0, 0, {})

    @property
    def protected(self) -> bool:
        return self.verdict.protected

    @classmethod
    def from_response(cls, r: pb.EvaluateResponse) -> EvaluateResult:
        return cls(
            r.request_id,
            _input(r.input_metrics),
            _targets(r.target_metrics),
            r.success_rate,
            r.masked_success_rate,
            r.protected_by_server,
            r.protected_png,
            _models(r.models),
            _timings(r.timings),
            r,
            _verdict(r.verdict),
        )


@dataclass(frozen=True)
class ModelInfo:
    models: dict[str, Any]
    description: str
    resolution: int
    attributes: list[str]
    methods: list[str]
    defaults: dict[str, Any]
    device: str
    execution_providers: list[str]
    limits: dict[str, int]
    execution: dict[str, Any] = field(default_factory=dict)  # precision, saliency_runtime, memory_batch, compile
    # engine seconds the server expects per image at its defaults, all targets; 0: not measured
    expected_seconds_per_image: float = 0.0
    response: pb.GetModelInfoResponse | None = field(default=None, repr=False, compare=False)
    victims: list[dict[str, Any]] = field(default_factory=list)  # name, kind, resolution, targets, attributes, ...

    @classmethod
    def from_response(cls, r: pb.GetModelInfoResponse) -> ModelInfo:
        d, lim = r.defaults, r.limits
        return cls(
            _models(r.models),
            r.description,
            r.resolution,
            list(r.attributes),
            list(r.methods),
            {
                "method": d.method,
                "epsilon": d.epsilon,
                "steps": d.steps,
                "step_size": d.step_size,
                "policy": _policy(d.policy),
                # what a request without detect_faces gets (an older server sends none: centre)
                "detect_faces": {
                    "enabled": d.detect_faces.enabled,
                    "no_face": "centre" if d.detect_faces.no_face == pb.FaceDetection.NO_FACE_CENTRE else "refuse",
                },
            },
            r.device,
            list(r.execution_providers),
            {
                "max_pixels": lim.max_pixels,
                "max_steps": lim.max_steps,
                "max_batch": lim.max_batch,
                "max_message_bytes": lim.max_message_bytes,
                "queue_length": lim.queue_length,
                "stream_window": lim.stream_window,
            },
            {
                "precision": r.execution.precision,
                "saliency_runtime": r.execution.saliency_runtime,
                "memory_batch": r.execution.memory_batch,
                "compile": r.execution.compile,
            },
            r.expected_seconds_per_image,
            r,
            [
                {
                    "name": v.name,
                    "kind": v.kind,
                    "resolution": v.resolution,
                    "targets": list(v.targets),
                    "attributes": list(v.attributes),
                    "sha256": v.sha256,
                    "description": v.description,
                    "default_targets": list(v.default_targets),
                    "provenance": {
                        k: getattr(v.provenance, k)
                        for k in ("trained_by", "trained_on", "license", "distribution", "version", "path", "credit")
                        if getattr(v.provenance, k)
                    },
                }
                for v in r.victims
            ],
        )


def _outputs(rows: Sequence[pb.GeneratorOutput]) -> dict[str, tuple[bytes, bytes]]:
    """Target name -> (G(I), G(x)) PNGs; "victim/target" ("@face" past the first face) where a
    bare name would be ambiguous (several victims share a target name, or several faces)."""
    plain = [g.target for g in rows]
    unique = len(set(plain)) == len(plain) and not any(g.face for g in rows)

    def key(g: pb.GeneratorOutput) -> str:
        return g.target if unique else f"{g.victim}/{g.target}" + (f"@{g.face}" if g.face else "")

    return {key(g): (g.original_png, g.protected_png) for g in rows}


@dataclass(frozen=True)
class StreamResult:
    """One answer of a stream: a result or this item's own error."""

    request_id: str
    result: ProtectResult | None = None
    error: FaceShieldError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
