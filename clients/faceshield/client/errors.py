"""Typed exceptions: one class per status code that a caller handles differently.

Each carries the `grpc.StatusCode`, the server's message, and the google.rpc details unpacked:
`field_violations` (what to fix), `retry_after` (seconds, from RetryInfo), `reason` and
`request_id` (from ErrorInfo).

    try:
        client.protect("face.png", epsilon=2.0)
    except InvalidArgumentError as e:
        print(e.field_violations)   # [FieldViolation(field='epsilon', description='must lie in ...')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class FaceShieldError(Exception):
    """A call failed. `code` is a grpc.StatusCode."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: Sequence[Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = list(details or [])
        self.field_violations: list[FieldViolation] = []
        self.retry_after: float | None = None
        self.reason: str | None = None
        self.request_id: str | None = None
        for d in self.details:
            if isinstance(d, error_details_pb2.BadRequest):
                self.field_violations += [FieldViolation(v.field, v.description) for v in d.field_violations]
            elif isinstance(d, error_details_pb2.RetryInfo):
                self.retry_after = d.retry_delay.ToNanoseconds() / 1e9
            elif isinstance(d, error_details_pb2.ErrorInfo):
                self.reason = d.reason
                self.request_id = d.metadata.get("request_id") or None

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.field_violations]

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:.2f} s)"
        return text


class InvalidArgumentError(FaceShieldError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class InputError(InvalidArgumentError):
    """Refused by the client before anything was sent."""

    def __init__(self, field: str, description: str):
        super().__init__(f"{field}: {description}")
        self.field_violations = [FieldViolation(field, description)]


class UnauthenticatedError(FaceShieldError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(FaceShieldError):
    code = grpc.StatusCode.PERMISSION_DENIED


class OverloadedError(FaceShieldError):
    """RESOURCE_EXHAUSTED: the server's queue is full (see `retry_after`), or a message is too large."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceededError(FaceShieldError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnavailableError(FaceShieldError, ConnectionError):
    """No server answered, or it is starting up or draining (retried by the channel first)."""

    code = grpc.StatusCode.UNAVAILABLE


class CancelledError(FaceShieldError):
    code = grpc.StatusCode.CANCELLED


class NotFoundError(FaceShieldError):
    code = grpc.StatusCode.NOT_FOUND


class UnimplementedError(FaceShieldError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(FaceShieldError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        PermissionDeniedError,
        OverloadedError,
        DeadlineExceededError,
        UnavailableError,
        CancelledError,
        NotFoundError,
        UnimplementedError,
        InternalError,
    )
}
_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
)


def _code(number: int) -> grpc.StatusCode:
    for c in grpc.StatusCode:
        if c.value[0] == number:
            return c
    return grpc.StatusCode.UNKNOWN


def from_status(status: status_pb2.Status) -> FaceShieldError:
    """The exception for a google.rpc.Status (a stream item's error, or a call's trailers)."""
    details = []
    for any_msg in status.details:
        for kind in _DETAIL_TYPES:
            if any_msg.Is(kind.DESCRIPTOR):
                d = kind()
                any_msg.Unpack(d)
                details.append(d)
                break
        else:
            details.append(any_msg)
    code = _code(status.code)
    return _BY_CODE.get(code, FaceShieldError)(status.message, code, details)


def from_rpc_error(error: grpc.RpcError) -> FaceShieldError:
    """The exception for a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`).

    The rich status (google.rpc.Status in the `grpc-status-details-bin` trailer) is read by
    grpcio-status's `rpc_status.from_call`; a call without one, or whose trailer disagrees with
    its status (from a proxy, say), gets the plain code and message."""
    if not all(callable(getattr(error, m, None)) for m in ("code", "details", "trailing_metadata")):
        # an RpcError that carries no call (grpc.aio.AioRpcError has these methods, though it
        # does not subclass grpc.Call)
        exc = FaceShieldError(str(error) or "the call failed", grpc.StatusCode.UNKNOWN)
        exc.__cause__ = error
        return exc
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None
    if status is not None:
        exc = from_status(status)
    else:
        code = error.code() or grpc.StatusCode.UNKNOWN
        exc = _BY_CODE.get(code, FaceShieldError)(error.details() or code.name, code)
    exc.__cause__ = error
    return exc
