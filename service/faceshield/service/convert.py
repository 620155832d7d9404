"""Messages <-> engine types. Decoding, validation of each field, encoding of results.

Everything a single request can get wrong is checked here, per request, with the proto field's
name, before the request joins a batch: a bad request is answered alone and never fails the
batch it would have shared. Runs on a worker thread (decoding a large PNG takes a while).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np

from faceshield.engine import (
    METHODS,
    AttackConfig,
    FaceShieldEngine,
    InvalidInputError,
    ProtectRequest,
)
from faceshield.engine.config import (
    DEFAULT_EPSILON,
    DEFAULT_METHOD,
    DEFAULT_STEP_SIZE,
    DEFAULT_STEPS,
)
from faceshield.engine.io.images import decode_image, decode_raw_rgb, encode_png
from faceshield.engine.metrics import InputMetrics, TargetMetrics
from faceshield.engine.ops.geometry import resolve_box
from faceshield.engine.pipeline import ProtectOutcome
from faceshield.v1 import faceshield_pb2 as pb

from .errors import bounded
from .jobs import EvaluateJob, ProtectJob, seedless

MAX_REQUEST_ID_CHARS = 128  # a UUID is 36; room for a caller's own prefix or trace id


def request_id(given: str) -> str:
    """The id to echo and log: the caller's, or a made-up one when it is empty. An id too long
    to accept (`check_request_id` refuses it) is echoed cut short, with a marker."""
    if not given:
        return uuid.uuid4().hex
    return given if len(given) <= MAX_REQUEST_ID_CHARS else bounded(given, MAX_REQUEST_ID_CHARS)


def check_request_id(given: str) -> None:
    if len(given) > MAX_REQUEST_ID_CHARS:
        raise InvalidInputError("request_id", f"at most {MAX_REQUEST_ID_CHARS} characters, got {len(given)}")


# -- requests ------------------------------------------------------------------------------
def decode_image_field(image: pb.Image, max_pixels: int, field: str) -> np.ndarray:
    kind = image.WhichOneof("data")
    if kind == "encoded":
        return decode_image(image.encoded, max_pixels=max_pixels, field=field)
    if kind == "raw":
        raw = image.raw
        return decode_raw_rgb(raw.data, raw.height, raw.width, max_pixels=max_pixels, field=field)
    raise InvalidInputError(field, "no image was sent: set encoded (PNG/JPEG bytes) or raw (RGB8 with its shape)")


def decode_mask(mask: pb.Mask, height: int, width: int, max_pixels: int) -> np.ndarray | None:
    """The caller's saliency mask, (H, W) float32 in [0, 1], or None when none was sent."""
    field = "saliency_mask"
    kind = mask.WhichOneof("data")
    if kind is None:
        return None
    if kind == "png":
        rgb = decode_image(mask.png, max_pixels=max_pixels, field=field)
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise InvalidInputError(field, "the PNG mask must be grayscale")
        values = rgb[..., 0].astype(np.float32) / 255.0
    else:
        if len(mask.float32) != height * width * 4:
            raise InvalidInputError(
                field,
                f"a float32 mask of the image's size {width}x{height} needs "
                f"{height * width * 4} bytes, got {len(mask.float32)}",
            )
        values = np.frombuffer(mask.float32, dtype="<f4").reshape(height, width).astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise InvalidInputError(field, "values must be finite and lie in [0, 1]")
    if values.shape != (height, width):
        raise InvalidInputError(
            field, f"the mask is {values.shape[1]}x{values.shape[0]}; the image is {width}x{height}"
        )
    return values


def default_config() -> AttackConfig:
    """The attack a request that sets no attack field gets (GetModelInfo's `defaults`)."""
    return AttackConfig.for_method(DEFAULT_METHOD)


def attack_config(method: str, msg, max_steps: int) -> AttackConfig:
    """AttackConfig from a message's method / epsilon / steps / step_size / seed fields."""
    if len(method) > max(map(len, METHODS)):  # refused without echoing it
        raise InvalidInputError(
            "method", f"no method has a name of {len(method)} characters; choose one of {', '.join(METHODS)}"
        )
    overrides = {}
    for name in ("epsilon", "steps", "step_size", "seed"):
        if msg.HasField(name):
            overrides[name] = getattr(msg, name)
    return AttackConfig.for_method(method or DEFAULT_METHOD, max_steps=max_steps, **overrides)


def check_labels(engine: FaceShieldEngine, attrs: Sequence[float], targets: Sequence[str]):
    """(original_attributes or None, targets or None), checked against the model."""
    names = engine.attributes
    listed = ", ".join(names)
    # Sizes first, so that what the messages below echo is never longer than a real attribute.
    if len(targets) > len(names):
        raise InvalidInputError("targets", f"at most {len(names)} targets ({listed}), got {len(targets)}")
    longest = max(map(len, names))
    for t in targets:
        if len(t) > longest:
            raise InvalidInputError(
                "targets", f"no attribute has a name of {len(t)} characters; this model edits {listed}"
            )
        if t not in names:
            raise InvalidInputError("targets", f"unknown attribute {t!r}; this model edits {listed}")
    if len(set(targets)) != len(targets):
        raise InvalidInputError("targets", "each target may appear once")
    if attrs:
        if len(attrs) != len(names):
            raise InvalidInputError(
                "original_attributes", f"expected {len(names)} values of 0 or 1 ({listed}), got {len(attrs)} values"
            )
        if any(v not in (0.0, 1.0) for v in attrs):
            raise InvalidInputError(
                "original_attributes", f"expected {len(names)} values of 0 or 1 ({listed}), got {list(attrs)}"
            )
    return (list(attrs) or None), (list(targets) or None)


def face_box(msg, height: int, width: int) -> tuple[int, int, int, int] | None:
    if not msg.HasField("face_box"):
        return None
    b = msg.face_box
    box = (b.left, b.top, b.right, b.bottom)
    resolve_box(box, height, width)  # raises InvalidInputError("face_box", ...)
    return box


def protect_job(msg: pb.ProtectImageRequest, engine: FaceShieldEngine, rid: str) -> ProtectJob:
    check_request_id(msg.request_id)
    limits = engine.limits
    config = attack_config(msg.method, msg, limits.max_steps)
    attrs, targets = check_labels(engine, msg.original_attributes, msg.targets)
    image = decode_image_field(msg.image, limits.max_pixels, "image")
    h, w = image.shape[:2]
    request = ProtectRequest(
        image,
        original_attributes=attrs,
        targets=targets,
        face_box=face_box(msg, h, w),
        saliency_mask=decode_mask(msg.saliency_mask, h, w, limits.max_pixels),
        seed=config.seed,
    )
    if config.stages.mask in ("saliency", "union") and request.saliency_mask is None and engine.models.saliency is None:
        raise InvalidInputError(
            "saliency_mask",
            f"method {config.method!r} needs a saliency mask and this server "
            "runs without a saliency model: send one, or choose pgd/ifgsm",
        )
    return ProtectJob(rid, request, seedless(config), msg.extras.masks, msg.extras.generator_outputs)


def evaluate_job(msg: pb.EvaluateRequest, engine: FaceShieldEngine, rid: str) -> EvaluateJob | ProtectJob:
    """An EvaluateJob, or a ProtectJob when no protected image was sent (protect, then measure)."""
    check_request_id(msg.request_id)
    limits = engine.limits
    if not msg.HasField("protected"):
        as_protect = pb.ProtectImageRequest(
            request_id=rid,
            image=msg.original,
            original_attributes=msg.original_attributes,
            targets=msg.targets,
            method=msg.method,
            saliency_mask=msg.saliency_mask,
        )
        for name in ("epsilon", "steps", "step_size", "seed"):
            if msg.HasField(name):
                setattr(as_protect, name, getattr(msg, name))
        if msg.HasField("face_box"):
            as_protect.face_box.CopyFrom(msg.face_box)
        try:
            return protect_job(as_protect, engine, rid)
        except InvalidInputError as exc:
            if exc.field == "image":  # the field is called `original` in this message
                raise InvalidInputError("original", exc.description) from None
            raise
    attrs, targets = check_labels(engine, msg.original_attributes, msg.targets)
    original = decode_image_field(msg.original, limits.max_pixels, "original")
    protected = decode_image_field(msg.protected, limits.max_pixels, "protected")
    if original.shape != protected.shape:
        raise InvalidInputError(
            "protected",
            f"the protected image is {protected.shape[1]}x{protected.shape[0]}; "
            f"the original is {original.shape[1]}x{original.shape[0]}",
        )
    h, w = original.shape[:2]
    return EvaluateJob(rid, original, protected, attrs, targets, face_box(msg, h, w))


# -- responses -----------------------------------------------------------------------------
def model_versions(info: dict) -> pb.ModelVersions:
    return pb.ModelVersions(
        name=info["name"],
        version=info["version"],
        trained=info["trained"],
        saliency=info["saliency"],
        hashes=info["hashes"],
    )


def input_metrics(m: InputMetrics) -> pb.InputMetrics:
    return pb.InputMetrics(l1=m.l1, l2=m.l2, mse=m.mse, linf=m.linf, psnr=m.psnr, ssim=m.ssim)


def target_metrics(rows: Sequence[TargetMetrics]) -> list[pb.TargetMetrics]:
    return [
        pb.TargetMetrics(
            target=t.target,
            l1=t.l1,
            mse=t.mse,
            success=t.success,
            masked_mse=t.masked_mse,
            masked_success=t.masked_success,
            edited_fraction=t.edited_fraction,
        )
        for t in rows
    ]


def rates(rows: Sequence[TargetMetrics]) -> tuple[float, float]:
    n = max(len(rows), 1)
    return sum(t.success for t in rows) / n, sum(t.masked_success for t in rows) / n


def attack_parameters(job: ProtectJob, engine: FaceShieldEngine) -> pb.AttackParameters:
    c = job.config
    return pb.AttackParameters(
        method=c.method,
        epsilon=c.epsilon,
        steps=c.steps,
        step_size=c.step_size,
        seed=int(job.request.seed or 0),
        targets=list(job.request.targets or engine.attributes),
    )


def protect_response(
    job: ProtectJob, outcome: ProtectOutcome, engine: FaceShieldEngine, models: pb.ModelVersions, timings: pb.Timings
) -> pb.ProtectImageResponse:
    h, w = outcome.protected.shape[:2]
    success, masked = rates(outcome.targets)
    resp = pb.ProtectImageResponse(
        request_id=job.request_id,
        protected_png=encode_png(outcome.protected),
        width=w,
        height=h,
        input_metrics=input_metrics(outcome.input),
        target_metrics=target_metrics(outcome.targets),
        success_rate=success,
        masked_success_rate=masked,
        attack=attack_parameters(job, engine),
        models=models,
        timings=timings,
    )
    if job.want_masks:
        for name, m in outcome.masks.items():
            resp.masks.add(name=name, width=m.shape[1], height=m.shape[0], float32=m.astype("<f4").tobytes())
    if job.want_outputs and outcome.outputs_original is not None:
        for k, target in enumerate(resp.attack.targets):
            resp.generator_outputs.add(
                target=target,
                original_png=encode_png(outcome.outputs_original[k]),
                protected_png=encode_png(outcome.outputs_protected[k]),
            )
    return resp


def evaluate_response(
    rid: str, metrics: tuple[InputMetrics, list[TargetMetrics]], models: pb.ModelVersions, timings: pb.Timings
) -> pb.EvaluateResponse:
    inp, rows = metrics
    success, masked = rates(rows)
    return pb.EvaluateResponse(
        request_id=rid,
        input_metrics=input_metrics(inp),
        target_metrics=target_metrics(rows),
        success_rate=success,
        masked_success_rate=masked,
        models=models,
        timings=timings,
    )


def evaluate_from_protect(protected: pb.ProtectImageResponse) -> pb.EvaluateResponse:
    return pb.EvaluateResponse(
        request_id=protected.request_id,
        input_metrics=protected.input_metrics,
        target_metrics=protected.target_metrics,
        success_rate=protected.success_rate,
        masked_success_rate=protected.masked_success_rate,
        protected_by_server=True,
        protected_png=protected.protected_png,
        attack=protected.attack,
        models=protected.models,
        timings=protected.timings,
    )


def model_info(engine: FaceShieldEngine, settings, expected_seconds_per_image: float = 0.0) -> pb.GetModelInfoResponse:
    info = engine.info()
    return pb.GetModelInfoResponse(
        models=model_versions(info),
        description=info["description"],
        resolution=info["resolution"],
        attributes=info["attributes"],
        methods=list(METHODS),
        defaults=pb.AttackDefaults(
            method=DEFAULT_METHOD, epsilon=DEFAULT_EPSILON, steps=DEFAULT_STEPS, step_size=DEFAULT_STEP_SIZE
        ),
        device=info["device"],
        execution_providers=info["providers"],
        limits=pb.Limits(
            max_pixels=info["max_pixels"],
            max_steps=info["max_steps"],
            max_batch=info["max_batch"],
            max_message_bytes=settings.max_message_bytes,
            queue_length=settings.queue_length,
            stream_window=settings.stream_window,
        ),
        execution=pb.Execution(
            precision=info["precision"],
            saliency_runtime=info["saliency_runtime"],
            memory_batch=info["memory_batch"] or 0,
            compile=info["compile"],
        ),
        expected_seconds_per_image=expected_seconds_per_image,
    )
