"""Engine and service errors -> gRPC status with google.rpc details.

Callers get a `google.rpc.Status` whose details say what to do: a `BadRequest` naming the field
to fix, a `RetryInfo` saying when to come back, and always an `ErrorInfo` (reason + request id).
Unary calls send it in the trailers (`grpc-status-details-bin`); stream items carry it inline.
Whatever the caller sent, every echoed value is bounded (`bounded`), so the trailers fit a
client's metadata limit.
"""

from __future__ import annotations

import collections
import logging

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from faceshield.engine.errors import FaceShieldError, InvalidInputError

log = logging.getLogger(__name__)

DOMAIN = "faceshield.v1"

# Bounds on what a status echoes, in UTF-8 bytes. Unary errors travel in the trailers, which a
# client refuses above its metadata limit (gRPC's default: 8 KiB soft, 16 KiB hard), and then
# sees RESOURCE_EXHAUSTED without RetryInfo, which a retrying client takes for overload. The
# message goes out twice (grpc-message, percent-encoded: up to 3x; and inside the base64 details
# with the field violation's description), so these keep every status under about 4 KiB.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_BYTES = 128
MAX_REQUEST_ID_BYTES = 160  # the longest id accepted (128 characters) may be in ASCII, or longer


def bounded(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (never inside a character), with a marker that
    says how much was left out."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    kept = data[: max(limit - 32, 0)].decode("utf-8", "ignore")
    return f"{kept}...[{len(text) - len(kept)} more characters]"


class ServiceError(Exception):
    """An error the service raises itself (not the engine's)."""

    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"
    retry_after: float | None = None

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after


class Overloaded(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "OVERLOADED"


class NotReady(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "NOT_READY"


class Draining(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DRAINING"


class DeadlinePassed(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class CallerGone(ServiceError):
    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"


def to_rpc_status(exc: BaseException, request_id: str = "") -> status_pb2.Status:
    """The google.rpc.Status that describes `exc` to a caller, every echoed value bounded."""
    request_id = bounded(request_id, MAX_REQUEST_ID_BYTES)
    details: list = []
    if isinstance(exc, InvalidInputError):
        code, reason, message = grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT", str(exc)
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=bounded(exc.field, MAX_FIELD_BYTES), description=bounded(exc.description, MAX_MESSAGE_BYTES)
        )
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    elif isinstance(exc, ServiceError):
        code, reason, message = exc.code, exc.reason, exc.message
        if exc.retry_after is not None:
            details.append(error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after)))
    elif isinstance(exc, FaceShieldError):
        # ModelLoadError and friends at run time: the server is broken, not the request.
        code, reason, message = grpc.StatusCode.INTERNAL, type(exc).__name__, str(exc)
    else:
        code, reason = grpc.StatusCode.INTERNAL, "INTERNAL"
        message = f"internal error; the server log has the details (request id {request_id or 'none'})"
    details.append(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata={"request_id": request_id}))
    message = bounded(message, MAX_MESSAGE_BYTES)
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    """For `context.abort_with_status`: code, message and the details in the trailers.

    UNAVAILABLE with a RetryInfo also gets `grpc-retry-pushback-ms`, the trailer that gRPC's own
    channel retries obey, so clients that retry UNAVAILABLE by service config wait as told.
    """
    base = rpc_status.to_status(status)
    trailers = tuple(base.trailing_metadata)
    if base.code == grpc.StatusCode.UNAVAILABLE:
        for any_msg in status.details:
            if any_msg.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                any_msg.Unpack(info)
                trailers += (("grpc-retry-pushback-ms", str(info.retry_delay.ToMilliseconds())),)
    return _Status(base.code, base.details, trailers)


def code_of(status: status_pb2.Status) -> grpc.StatusCode:
    for c in grpc.StatusCode:
        if c.value[0] == status.code:
            return c
    return grpc.StatusCode.UNKNOWN


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
    return d


__all__ = [
    "CallerGone",
    "DeadlinePassed",
    "Draining",
    "NotReady",
    "Overloaded",
    "ServiceError",
    "bounded",
    "code_of",
    "to_grpc_status",
    "to_rpc_status",
]
