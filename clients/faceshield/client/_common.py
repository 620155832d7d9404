"""What the sync and asyncio clients share: the channel and its settings, request building,
retry policy."""

from __future__ import annotations

import json
import numbers
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, cast

import grpc

from faceshield.v1 import faceshield_pb2 as pb

from . import _stubs
from .errors import DeadlineExceededError, FaceShieldError, InputError, OverloadedError
from .images import ImageInput, to_image, to_mask
from .policy import Policy, to_policy
from .results import ModelInfo

FaceBoxes = Sequence[int] | Sequence[Sequence[int]]  # one (left, top, right, bottom), or one per face
Pem = bytes | str | Path  # PEM bytes, or the path of a PEM file
# A stream element: an image, a (request_id, image) pair, or a ready ProtectImageRequest.
StreamItem = ImageInput | tuple[str, ImageInput] | pb.ProtectImageRequest

SERVICE = "faceshield.v1.FaceShield"
DEFAULT_TARGET = "localhost:50051"
# Every call has a deadline unless the caller passes timeout=None. Without a timeout= (per call
# or in the constructor), protect and evaluate take theirs from the server: DEADLINE_MARGIN times
# the seconds per image it reports having measured (GetModelInfo.expected_seconds_per_image),
# never under DEFAULT_TIMEOUT; other calls, and servers that report nothing, get DEFAULT_TIMEOUT.
DEFAULT_TIMEOUT = 60.0
DEADLINE_MARGIN = 5.0  # room for a queue, a photo larger than the server's recent ones, a busier host
ESTIMATE_TTL = 300.0  # seconds a server's estimate is reused before asking again
ESTIMATE_TIMEOUT = 10.0  # deadline of the GetModelInfo call that asks
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_OVERLOAD_RETRIES = 3
DEFAULT_STREAM_WINDOW = 16
MAX_OVERLOAD_WAIT = 10.0


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


USE_DEFAULT = _Unset()  # "the client's default timeout" (None means no deadline)
Timeout = float | None | _Unset


class Deadline(NamedTuple):
    """A call's deadline in seconds (None: none) and where it came from, for error messages."""

    seconds: float | None
    source: str


def explain_deadline(error: FaceShieldError, deadline: Deadline) -> FaceShieldError:
    """Say which deadline ran out and how to raise it (DEADLINE_EXCEEDED alone says neither)."""
    if isinstance(error, DeadlineExceededError) and deadline.seconds is not None:
        error.message = (
            f"{error.message}: the call's {deadline.seconds:g} s deadline ran out ({deadline.source}); pass "
            "timeout=SECONDS to the call or to the client's constructor for a longer one (timeout=None: no deadline)"
        )
        error.args = (error.message,)
    return error


@dataclass(frozen=True)
class RetryPolicy:
    """Transparent retries of UNAVAILABLE by the channel (gRPC service config)."""

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 2.0
    multiplier: float = 2.0


DEFAULT_RETRY = RetryPolicy()


def service_config(retry: RetryPolicy | None, load_balancing: str | None) -> str:
    config: dict[str, Any] = {}
    if retry is not None:
        config["methodConfig"] = [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": retry.max_attempts,
                    "initialBackoff": f"{retry.initial_backoff}s",
                    "maxBackoff": f"{retry.max_backoff}s",
                    "backoffMultiplier": retry.multiplier,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    if load_balancing:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    return json.dumps(config)


def channel_options(
    max_message_bytes: int,
    retry: RetryPolicy | None,
    load_balancing: str | None,
    extra: Sequence[tuple[str, object]] = (),
) -> list[tuple[str, object]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        ("grpc.service_config", service_config(retry, load_balancing)),
        *extra,
    ]


def _pem(value: Pem | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def credentials(
    tls: bool, root_certificates: Pem | None, certificate_chain: Pem | None, private_key: Pem | None
) -> grpc.ChannelCredentials | None:
    """None for plaintext; TLS with optional custom CA and client certificate (mTLS)."""
    if not (tls or root_certificates or certificate_chain):
        return None
    return grpc.ssl_channel_credentials(_pem(root_certificates), _pem(private_key), _pem(certificate_chain))


def call_metadata(token: str | None, metadata: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = list(metadata)
    if token:
        out.append(("authorization", f"Bearer {token}"))
    return out


# -- request building ----------------------------------------------------------------------
_Stub = TypeVar("_Stub")
_Health = TypeVar("_Health")


class ClientBase(Generic[_Stub, _Health]):
    """What the blocking and the asyncio client share: the channel (their `_secure_channel` /
    `_insecure_channel` make it, grpc's or grpc.aio's), its stubs, call metadata and deadlines.
    Arguments: see `FaceShieldClient`. `_Stub` and `_Health` are the typed views (`_stubs`) of
    the stubs over that kind of channel."""

    _secure_channel: Callable[..., Any]
    _insecure_channel: Callable[..., Any]

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: Pem | None = None,
        certificate_chain: Pem | None = None,
        private_key: Pem | None = None,
        timeout: Timeout = USE_DEFAULT,
        load_balancing: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        overload_retries: int = DEFAULT_OVERLOAD_RETRIES,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, object]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._estimate: tuple[float, int, float] | None = None  # seconds per image, default steps, when asked
        self.overload_retries = overload_retries
        self._metadata = call_metadata(token, metadata)
        opts = channel_options(max_message_bytes, retry, load_balancing, options)
        creds = credentials(tls, root_certificates, certificate_chain, private_key)
        self.channel = self._secure_channel(target, creds, opts) if creds else self._insecure_channel(target, opts)
        self.stub = cast(_Stub, _stubs.faceshield_stub(self.channel))
        self._health = cast(_Health, _stubs.health_stub(self.channel))

    def _fixed(self, timeout: Timeout, fallback: float | None = None) -> Deadline:
        if not isinstance(timeout, _Unset):  # i.e. not USE_DEFAULT, the only _Unset
            return Deadline(timeout, "set by this call's timeout=")
        if not isinstance(self.timeout, _Unset):
            return Deadline(self.timeout, "set by the client's timeout=")
        return Deadline(fallback, f"the SDK's default of {DEFAULT_TIMEOUT:g} s")

    def _estimate_fresh(self) -> bool:
        return self._estimate is not None and time.monotonic() - self._estimate[2] < ESTIMATE_TTL

    def _remember(self, info: ModelInfo) -> None:
        """Keep a GetModelInfo answer's estimate (every model_info call refreshes it)."""
        r = info.response
        if r is not None:
            self._estimate = (r.expected_seconds_per_image, r.defaults.steps, time.monotonic())

    def _derived(self, steps: int | None) -> Deadline:
        """The default deadline of one image's protect/evaluate, from the remembered estimate."""
        expected, default_steps, _ = self._estimate or (0.0, 0, 0.0)
        if expected <= 0:
            return Deadline(
                DEFAULT_TIMEOUT, f"the SDK's default of {DEFAULT_TIMEOUT:g} s; the server reported no estimate"
            )
        scale = max(1.0, steps / default_steps) if steps and default_steps else 1.0
        seconds = max(DEFAULT_TIMEOUT, DEADLINE_MARGIN * expected * scale)
        more = f" x {scale:g} for {steps} steps" if scale > 1 else ""
        return Deadline(
            round(seconds, 1),
            f"the SDK's default: {DEADLINE_MARGIN:g} x the server's expected {expected:.1f} s per image{more}, "
            f"at least {DEFAULT_TIMEOUT:g} s",
        )


# Requests hold what callers pass, checked here: the helpers take `object` where a caller may
# pass anything (the annotations of the public methods are not enforced at run time).
Request = pb.ProtectImageRequest | pb.EvaluateRequest


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(name, f"expected a number, got {value!r}")
    return float(value)


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(name, f"expected a whole number, got {value!r}")
    return int(value)


def _attack_fields(
    msg: Request, method: object, epsilon: object, steps: object, step_size: object, seed: object
) -> None:
    if method is not None:
        if not isinstance(method, str):
            raise InputError("method", f"expected a method name, got {method!r}")
        msg.method = method
    if epsilon is not None:
        msg.epsilon = _real("epsilon", epsilon)
    if steps is not None:
        msg.steps = _whole("steps", steps)
    if step_size is not None:
        msg.step_size = _real("step_size", step_size)
    if seed is not None:
        msg.seed = _whole("seed", seed)


def _labels(msg: Request, targets: Sequence[str] | None, original_attributes: Iterable[object] | None) -> None:
    if targets is not None:
        if isinstance(targets, str) or not all(isinstance(t, str) for t in targets):
            raise InputError("targets", "expected a list of attribute names")
        msg.targets.extend(targets)
    if original_attributes is not None:
        values = [_real("original_attributes", v) for v in original_attributes]
        msg.original_attributes.extend(values)


def _box(msg: Request, face_box: FaceBoxes | None) -> None:
    """One box (left, top, right, bottom), or a list of them: every face of the photo."""
    if face_box is None:
        return
    several = len(face_box) > 0 and not isinstance(face_box[0], numbers.Number)
    boxes = cast(list[Sequence[object]], list(face_box) if several else [face_box])  # several: a list of boxes
    for box in boxes:
        if len(box) != 4:
            raise InputError("face_box", "expected (left, top, right, bottom), or a list of such boxes")
        left, top, right, bottom = (_whole("face_box", v) for v in box)
        target = msg.face_boxes.add() if several else msg.face_box
        target.CopyFrom(pb.FaceBox(left=left, top=top, right=right, bottom=bottom))


NO_FACE = {"refuse": pb.FaceDetection.NO_FACE_REFUSE, "centre": pb.FaceDetection.NO_FACE_CENTRE}


def _detection(msg: pb.ProtectImageRequest | pb.EvaluateRequest, detect_faces: bool, no_face: str) -> None:
    """How the server finds the faces when no box is given: detect them (`no_face`: refuse or
    centre), or the centre square. Always sent, so the result does not depend on the server's
    default (servers before 2026-12-06 used the centre square when the field was unset)."""
    if no_face not in NO_FACE:
        raise InputError("no_face", f"expected one of {', '.join(NO_FACE)}, got {no_face!r}")
    if not isinstance(detect_faces, bool):
        raise InputError("detect_faces", f"expected True or False, got {detect_faces!r}")
    msg.detect_faces.CopyFrom(pb.FaceDetection(enabled=detect_faces, no_face=NO_FACE[no_face]))


def _policy(msg: pb.ProtectImageRequest | pb.EvaluateRequest, policy: Policy | str | None) -> None:
    chosen = to_policy(policy)
    if chosen is not None:
        msg.policy.CopyFrom(chosen)


def protect_request(
    image: ImageInput,
    *,
    request_id: str | None = None,
    method: str | None = None,
    epsilon: float | None = None,
    steps: int | None = None,
    step_size: float | None = None,
    seed: int | None = None,
    targets: Sequence[str] | None = None,
    original_attributes: Sequence[float] | None = None,
    face_box: FaceBoxes | None = None,
    saliency_mask: ImageInput | None = None,
    return_masks: bool = False,
    return_generator_outputs: bool = False,
    policy: Policy | str | None = None,
    detect_faces: bool = True,
    no_face: str = "refuse",
) -> pb.ProtectImageRequest:
    """The ProtectImageRequest for these arguments; unset fields take the server's defaults."""
    msg = pb.ProtectImageRequest(request_id=request_id or "", image=to_image(image))
    _attack_fields(msg, method, epsilon, steps, step_size, seed)
    _labels(msg, targets, original_attributes)
    _box(msg, face_box)
    _detection(msg, detect_faces, no_face)
    _policy(msg, policy)
    if saliency_mask is not None:
        msg.saliency_mask.CopyFrom(to_mask(saliency_mask))
    msg.extras.masks = bool(return_masks)
    msg.extras.generator_outputs = bool(return_generator_outputs)
    return msg


def evaluate_request(
    original: ImageInput,
    protected: ImageInput | None = None,
    *,
    request_id: str | None = None,
    method: str | None = None,
    epsilon: float | None = None,
    steps: int | None = None,
    step_size: float | None = None,
    seed: int | None = None,
    targets: Sequence[str] | None = None,
    original_attributes: Sequence[float] | None = None,
    face_box: FaceBoxes | None = None,
    saliency_mask: ImageInput | None = None,
    policy: Policy | str | None = None,
    detect_faces: bool = True,
    no_face: str = "refuse",
) -> pb.EvaluateRequest:
    msg = pb.EvaluateRequest(request_id=request_id or "", original=to_image(original, "original"))
    if protected is not None:
        msg.protected.CopyFrom(to_image(protected, "protected"))
    _attack_fields(msg, method, epsilon, steps, step_size, seed)
    _labels(msg, targets, original_attributes)
    _box(msg, face_box)
    _detection(msg, detect_faces, no_face)
    _policy(msg, policy)
    if saliency_mask is not None:
        msg.saliency_mask.CopyFrom(to_mask(saliency_mask))
    return msg


def stream_options(**options: Any) -> dict[str, Any]:
    """The keyword arguments of `protect_request` that a stream applies to each of its items."""
    return options


def stream_item(index: int, item: StreamItem, options: dict[str, Any]) -> pb.ProtectImageRequest:
    """A stream element: an image, a (request_id, image) pair, or a ready ProtectImageRequest."""
    if isinstance(item, pb.ProtectImageRequest):
        return item if item.request_id else _with_id(item, str(index))
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return protect_request(item[1], request_id=item[0], **options)
    return protect_request(item, request_id=str(index), **options)


def _with_id(msg: pb.ProtectImageRequest, rid: str) -> pb.ProtectImageRequest:
    out = pb.ProtectImageRequest()
    out.CopyFrom(msg)
    out.request_id = rid
    return out


def overload_wait(error: FaceShieldError, attempt: int, retries: int, time_left: float | None) -> float | None:
    """Seconds to wait before retrying an overloaded call, or None to give up."""
    if not isinstance(error, OverloadedError) or error.retry_after is None or attempt >= retries:
        return None
    wait = min(error.retry_after, MAX_OVERLOAD_WAIT)
    if time_left is not None and wait >= time_left:
        return None
    return wait
