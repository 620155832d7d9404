"""Bearer-token authentication as a server interceptor.

Calls must carry `authorization: Bearer <token>` with one of the configured tokens, or they end
with UNAUTHENTICATED before reaching a servicer. The health service stays open, so that
orchestrators' probes need no secret. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

import grpc

log = logging.getLogger(__name__)

OPEN_SERVICES = ("/grpc.health.v1.Health/",)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Iterable[str], open_prefixes: Iterable[str] = OPEN_SERVICES):
        self._tokens = [t.encode() for t in tokens]
        self._open = tuple(open_prefixes)
        if not self._tokens:
            raise ValueError("BearerTokenInterceptor needs at least one token")

    def _allowed(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer":
                    return False
                given = token.strip().encode()
                # Check against every token so the time taken does not depend on which matched.
                return any([hmac.compare_digest(given, t) for t in self._tokens])
        return False

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(self._open) or self._allowed(handler_call_details.invocation_metadata):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        log.info("refused a call without a valid token", extra={"rpc": method, "code": "UNAUTHENTICATED"})
        return _refusing(handler)


async def _deny(request_or_iterator, context: grpc.aio.ServicerContext):
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing or invalid bearer token: send metadata 'authorization: Bearer <token>'",
    )


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that refuses the call."""
    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_deny, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_deny, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_deny, **kw)
    return grpc.stream_stream_rpc_method_handler(_deny, **kw)
