"""Typed views of the gRPC stubs the clients call.

The generated `faceshield_pb2_grpc.FaceShieldStub` and grpcio-health-checking's `HealthStub` carry
no annotations (and grpcio ships no type information), so each client casts its stubs to these
protocols once: every call then has typed request and response messages. The blocking channel's
methods return the response; grpc.aio's return an awaitable call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from grpc_health.v1 import health_pb2_grpc

from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc

Metadata = Sequence[tuple[str, str]]

_Request = TypeVar("_Request", contravariant=True)
_Response = TypeVar("_Response", covariant=True)


class UnaryUnary(Protocol[_Request, _Response]):
    """A unary method of a stub (grpc's UnaryUnaryMultiCallable)."""

    def __call__(self, request: _Request, *, timeout: float | None = ..., metadata: Metadata = ...) -> _Response: ...


class StreamStream(Protocol[_Request, _Response]):
    """A bidirectional stream method of a stub (grpc's StreamStreamMultiCallable)."""

    def __call__(
        self, request_iterator: _Request, *, timeout: float | None = ..., metadata: Metadata = ...
    ) -> _Response: ...


class ResponseStream(Protocol[_Response]):
    """A blocking stream call: iterates over the responses; cancel() ends it."""

    def __iter__(self) -> Iterator[_Response]: ...

    def cancel(self) -> bool: ...


class AsyncResponseStream(Protocol[_Response]):
    """A grpc.aio stream call: async-iterates over the responses; cancel() ends it."""

    def __aiter__(self) -> AsyncIterator[_Response]: ...

    def cancel(self) -> bool: ...


class FaceShieldStub(Protocol):
    """`faceshield_pb2_grpc.FaceShieldStub` over a blocking channel."""

    ProtectImage: UnaryUnary[pb.ProtectImageRequest, pb.ProtectImageResponse]
    Evaluate: UnaryUnary[pb.EvaluateRequest, pb.EvaluateResponse]
    GetModelInfo: UnaryUnary[pb.GetModelInfoRequest, pb.GetModelInfoResponse]
    ProtectStream: StreamStream[Iterator[pb.ProtectImageRequest], ResponseStream[pb.ProtectStreamResponse]]


class AsyncFaceShieldStub(Protocol):
    """`faceshield_pb2_grpc.FaceShieldStub` over a grpc.aio channel."""

    ProtectImage: UnaryUnary[pb.ProtectImageRequest, Awaitable[pb.ProtectImageResponse]]
    Evaluate: UnaryUnary[pb.EvaluateRequest, Awaitable[pb.EvaluateResponse]]
    GetModelInfo: UnaryUnary[pb.GetModelInfoRequest, Awaitable[pb.GetModelInfoResponse]]
    ProtectStream: StreamStream[AsyncIterator[pb.ProtectImageRequest], AsyncResponseStream[pb.ProtectStreamResponse]]


# grpc_health ships no type information: its messages are Any to mypy.
class HealthStub(Protocol):
    Check: UnaryUnary[Any, Any]  # HealthCheckRequest -> HealthCheckResponse


class AsyncHealthStub(Protocol):
    Check: UnaryUnary[Any, Awaitable[Any]]


def faceshield_stub(channel: object) -> object:
    """The generated stub over `channel` (cast it to the protocol of the channel's kind)."""
    return pb_grpc.FaceShieldStub(channel)  # type: ignore[no-untyped-call]  # generated code: no annotations


def health_stub(channel: object) -> object:
    """grpc.health.v1's stub over `channel`."""
    return health_pb2_grpc.HealthStub(channel)
