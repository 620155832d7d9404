"""Messages <-> engine types. Decoding, bounds, and encoding of results.

Everything a single request can get wrong is refused here, per request, before it joins a batch:
sizes first (so no error echoes an absurd value), then the image, then the engine's own
validation (`FaceShieldEngine.check`, the one the CLI uses too), which names the field. A bad
request is answered alone and never fails the batch it would have shared. Runs on a worker thread
(decoding a large PNG takes a while).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

import numpy as np

from faceshield.engine import METHODS, AttackConfig, FaceShieldEngine, InvalidInputError, ProtectRequest, faces
from faceshield.engine.config import (
    PROCESSINGS,
    PRODUCT_METHOD,
    Policy,
)
from faceshield.engine.faces import FaceChoice
from faceshield.engine.io.images import decode_image, decode_raw_rgb
from faceshield.engine.models.victims import qualified
from faceshield.engine.requests import CheckedRequest, check_boxes
from faceshield.v1 import faceshield_pb2 as pb

from .errors import bounded
from .jobs import EvaluateJob, ProtectJob, seedless

MAX_REQUEST_ID_CHARS = 128  # a UUID is 36; room for a caller's own prefix or trace id
DEFAULT_POLICY = "ensure"  # what an unset Policy.kind means: the verified protection


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
    return AttackConfig.for_method(PRODUCT_METHOD)


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
    return AttackConfig.for_method(method or PRODUCT_METHOD, max_steps=max_steps, **overrides)


def policy(msg: pb.Policy, config: AttackConfig, max_steps: int, defaults: Policy | None = None) -> Policy:
    """The request's policy, unset fields filled with the server's defaults, validated."""
    defaults = defaults or Policy(kind=DEFAULT_POLICY, early_stop=True)
    kind = msg.kind or defaults.kind
    if len(kind) > len("ensure"):
        raise InvalidInputError(
            "policy.kind", f"no policy has a name of {len(kind)} characters; choose ensure or fixed"
        )
    if len(msg.verify_after) > len(PROCESSINGS) or any(len(p) > max(map(len, PROCESSINGS)) for p in msg.verify_after):
        raise InvalidInputError("policy.verify_after", f"choose from {', '.join(PROCESSINGS)}")
    chosen = Policy(
        kind=kind,
        # Unset: the default budget, or the first round's steps where those are more.
        budget_steps=msg.budget_steps if msg.HasField("budget_steps") else max(defaults.budget_steps, config.steps),
        margin=msg.margin if msg.HasField("margin") else defaults.margin,
        early_stop=msg.early_stop if msg.HasField("early_stop") else kind == "ensure",
        verify_after=tuple(msg.verify_after),
    )
    try:
        chosen.validate(max_steps, config.steps)
    except InvalidInputError as exc:
        raise InvalidInputError(f"policy.{exc.field}", exc.description) from None
    return chosen


def check_sizes(engine: FaceShieldEngine, attrs: Sequence[float], targets: Sequence[str]) -> None:
    """Refuse absurd sizes before anything echoes them: more targets than the set has, names
    longer than any it knows, more attribute values than it has attributes."""
    known = [qualified(v.name, t) for v in engine.models.victims for t in v.targets]
    if len(targets) > len(known):
        raise InvalidInputError("targets", f"at most {len(known)} targets ({', '.join(known)}), got {len(targets)}")
    longest = max(map(len, known))
    for t in targets:
        if len(t) > longest:
            raise InvalidInputError(
                "targets", f"no target has a name of {len(t)} characters; this set edits {', '.join(known)}"
            )
    names = engine.attributes
    if len(attrs) > len(names):
        raise InvalidInputError(
            "original_attributes",
            f"expected {len(names)} values of 0 or 1 ({', '.join(names)}), got {len(attrs)} values",
        )


def face_boxes(msg) -> list[tuple[int, int, int, int]] | tuple[int, int, int, int] | None:
    """`face_boxes` when set, else `face_box`, else None (the centre square)."""
    if len(msg.face_boxes):
        return [(b.left, b.top, b.right, b.bottom) for b in msg.face_boxes]
    if msg.HasField("face_box"):
        b = msg.face_box
        return (b.left, b.top, b.right, b.bottom)
    return None


FACE_SOURCES = {
    "given": pb.FACE_SOURCE_GIVEN,
    "centre": pb.FACE_SOURCE_CENTRE,
    "detected": pb.FACE_SOURCE_DETECTED,
    "no-face-centre": pb.FACE_SOURCE_NO_FACE_CENTRE,
}


# What an unset `detect_faces` means: the command line's default (GetModelInfo reports it).
DEFAULT_FACE_DETECTION = pb.FaceDetection(enabled=True, no_face=pb.FaceDetection.NO_FACE_REFUSE)


def choose_faces(msg, image: np.ndarray) -> FaceChoice:
    """The request's boxes; else the detector's, unless the request turns detection off
    (`detect_faces { enabled: false }`: the centre square). An unset `detect_faces` means
    detection with `no_face` refuse, the command line's default (runs on a worker thread)."""
    given = face_boxes(msg)
    if given is not None:
        return FaceChoice(given, "given")  # type: ignore[arg-type]  # one box or several, as sent
    asked = msg.detect_faces if msg.HasField("detect_faces") else DEFAULT_FACE_DETECTION
    if not asked.enabled:
        return FaceChoice(None, "centre")
    no_face = "centre" if asked.no_face == pb.FaceDetection.NO_FACE_CENTRE else "refuse"
    return faces.choose_faces(image, None, True, no_face, field="detect_faces")


def with_faces(request: CheckedRequest, chosen: FaceChoice) -> CheckedRequest:
    """The checked request with the boxes the detector chose (given boxes were checked already)."""
    if chosen.source == "given":
        return request
    h, w = request.image.shape[:2]
    return dataclasses.replace(request, boxes=check_boxes(chosen.boxes, h, w))


def default_policy(settings) -> Policy:
    """The policy a request that sets none gets, from the server's settings."""
    if settings is None:
        return Policy(kind=DEFAULT_POLICY, early_stop=True)
    return Policy(
        kind=settings.policy,
        budget_steps=settings.budget_steps,
        margin=settings.margin,
        early_stop=settings.policy == "ensure",
    )


def _protect_job(msg, image_field: str, engine: FaceShieldEngine, rid: str, settings=None) -> ProtectJob:
    """A ProtectJob from the attack fields ProtectImageRequest and EvaluateRequest share; the
    image is `msg.<image_field>` and errors about it name that field."""
    check_request_id(msg.request_id)
    limits = engine.limits
    config = attack_config(msg.method, msg, limits.max_steps)
    chosen = policy(msg.policy, config, limits.max_steps, default_policy(settings))
    check_sizes(engine, msg.original_attributes, msg.targets)
    image = decode_image_field(getattr(msg, image_field), limits.max_pixels, image_field)
    h, w = image.shape[:2]
    try:  # every field first (cheap); then, where no box was sent, the detector (slower)
        request = engine.check(
            ProtectRequest(
                image,
                original_attributes=list(msg.original_attributes) or None,
                targets=list(msg.targets) or None,
                face_box=face_boxes(msg),
                saliency_mask=decode_mask(msg.saliency_mask, h, w, limits.max_pixels),
                seed=config.seed,
            )
        )
    except InvalidInputError as exc:
        raise (InvalidInputError(image_field, exc.description) if exc.field == "image" else exc) from None
    if config.stages.mask in ("saliency", "union") and request.saliency_mask is None and engine.models.saliency is None:
        raise InvalidInputError(
            "saliency_mask",
            f"method {config.method!r} needs a saliency mask and this server "
            "runs without a saliency model: send one, or choose pgd/ifgsm",
        )
    chosen_faces = choose_faces(msg, image)
    request = with_faces(request, chosen_faces)
    extras = msg.extras if image_field == "image" else pb.Extras()
    return ProtectJob(
        rid,
        request,
        seedless(config),
        chosen,
        extras.masks,
        extras.generator_outputs,
        face_source=chosen_faces.source,
        faces_detected=len(chosen_faces.detected),
    )


def protect_job(msg: pb.ProtectImageRequest, engine: FaceShieldEngine, rid: str, settings=None) -> ProtectJob:
    return _protect_job(msg, "image", engine, rid, settings)


def evaluate_job(
    msg: pb.EvaluateRequest, engine: FaceShieldEngine, rid: str, settings=None
) -> EvaluateJob | ProtectJob:
    """An EvaluateJob, or a ProtectJob when no protected image was sent (protect, then measure)."""
    if not msg.HasField("protected"):
        return _protect_job(msg, "original", engine, rid, settings)
    check_request_id(msg.request_id)
    check_sizes(engine, msg.original_attributes, msg.targets)
    limits = engine.limits
    original = decode_image_field(msg.original, limits.max_pixels, "original")
    protected = decode_image_field(msg.protected, limits.max_pixels, "protected")
    if original.shape != protected.shape:
        raise InvalidInputError(
            "protected",
            f"the protected image is {protected.shape[1]}x{protected.shape[0]}; "
            f"the original is {original.shape[1]}x{original.shape[0]}",
        )
    try:
        checked = engine.check(
            ProtectRequest(original, list(msg.original_attributes) or None, list(msg.targets) or None, face_boxes(msg))
        )
    except InvalidInputError as exc:
        raise (InvalidInputError("original", exc.description) if exc.field == "image" else exc) from None
    chosen_faces = choose_faces(msg, original)
    checked = with_faces(checked, chosen_faces)
    return EvaluateJob(rid, original, protected, checked, chosen_faces.source, len(chosen_faces.detected))
