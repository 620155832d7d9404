"""Registering the servicer so that a request that is not a valid protobuf is a bad request.

grpc's asyncio server parses each request with its handler's `request_deserializer` before the
servicer runs. When that parse raises, the call ends with UNKNOWN, the exception's class in the
message and no ErrorInfo: a caller cannot tell its own mistake from a server fault. `add_servicer`
registers every method of the service with a deserializer that never raises: bytes that do not
parse become an `Unparsable` in place of the message, and the handler answers it like any other
bad request (INVALID_ARGUMENT, a BadRequest naming the message type, an ErrorInfo), in a unary
call as its status and in a stream as that item's own error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor, message_factory

from faceshield.engine.errors import InvalidInputError

_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


@dataclass(frozen=True)
class Unparsable:
    """What a handler receives instead of a request whose bytes did not parse."""

    message_type: str  # full name, e.g. "faceshield.v1.ProtectImageRequest"
    size: int  # bytes received
    request_id: str = ""  # unknown: the servicer makes one up, as for an empty id

    def error(self) -> InvalidInputError:
        return InvalidInputError(
            self.message_type, f"the {self.size} request bytes are not a valid {self.message_type} protobuf message"
        )


def deferring_parser(message_class) -> Callable[[bytes], object]:
    """`message_class.FromString`, returning an `Unparsable` where it would raise."""
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, or whatever else the runtime raises on hostile bytes
            return Unparsable(name, len(data))

    return parse


def add_servicer(servicer, server: grpc.aio.Server, service: descriptor.ServiceDescriptor) -> None:
    """Register `servicer`'s methods for `service` (what the generated `add_..._to_server` does,
    with `deferring_parser` as each method's request deserializer)."""
    handlers = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        make = _HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=deferring_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
