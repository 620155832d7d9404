"""asyncio client: the twin of `FaceShieldClient`, same arguments, same results.

async with AsyncFaceShieldClient("localhost:50051") as client:
    result = await client.protect(array, method="pgd")
    async for answer in client.protect_stream(paths, window=8):
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence

import grpc
from grpc_health.v1 import health_pb2

from faceshield.v1 import faceshield_pb2 as pb

from . import _common as c
from .errors import FaceShieldError, UnavailableError, from_rpc_error
from .images import ImageInput
from .results import EvaluateResult, ModelInfo, ProtectResult, StreamResult
from .sync import _stream_result


class AsyncFaceShieldClient(c.ClientBase):
    """See `FaceShieldClient` for the arguments. Create it inside a running event loop."""

    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _insecure_channel = staticmethod(grpc.aio.insecure_channel)

    async def _unary(self, method, request, timeout, metadata):
        timeout = self._timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                return await method(request, timeout=left, metadata=[*self._metadata, *metadata])
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            wait = c.overload_wait(
                error, attempt, self.overload_retries, None if end is None else end - time.monotonic()
            )
            if wait is None:
                raise error
            attempt += 1
            await asyncio.sleep(wait)

    async def protect(
        self, image: ImageInput, *, timeout=c.USE_DEFAULT, metadata: Sequence[tuple[str, str]] = (), **options
    ) -> ProtectResult:
        request = c.protect_request(image, **options)
        return ProtectResult.from_response(await self._unary(self.stub.ProtectImage, request, timeout, metadata))

    async def evaluate(
        self,
        original: ImageInput,
        protected: ImageInput | None = None,
        *,
        timeout=c.USE_DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
        **options,
    ) -> EvaluateResult:
        request = c.evaluate_request(original, protected, **options)
        return EvaluateResult.from_response(await self._unary(self.stub.Evaluate, request, timeout, metadata))

    async def model_info(self, *, timeout=c.USE_DEFAULT) -> ModelInfo:
        reply = await self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), timeout, ())
        return ModelInfo.from_response(reply)

    async def health(self, service: str = "", *, timeout=c.USE_DEFAULT) -> str:
        reply = await self._unary(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout, ())
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def wait_until_serving(self, timeout: float = 60.0, poll: float = 0.2) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                if await self.health(timeout=max(min(poll * 5, end - time.monotonic()), 0.01)) == "SERVING":
                    return
            except FaceShieldError:
                pass
            if time.monotonic() >= end:
                raise UnavailableError(f"{self.target} was not SERVING within {timeout} s")
            await asyncio.sleep(poll)

    async def protect_stream(
        self,
        images: Iterable | AsyncIterable,
        *,
        window: int = c.DEFAULT_STREAM_WINDOW,
        timeout=None,
        metadata: Sequence[tuple[str, str]] = (),
        **options,
    ) -> AsyncIterator[StreamResult]:
        """As `FaceShieldClient.protect_stream`; `images` may also be an async iterable."""
        slots = asyncio.Semaphore(window)

        async def requests():
            source = images.__aiter__() if isinstance(images, AsyncIterable) else iter(images)
            i = 0
            while True:
                await slots.acquire()  # a slot first, then the next image: none is read early
                try:
                    item = await source.__anext__() if isinstance(images, AsyncIterable) else next(source)
                except (StopIteration, StopAsyncIteration):
                    return
                yield c.stream_item(i, item, options)
                i += 1

        call = self.stub.ProtectStream(
            requests(), timeout=self._timeout(timeout), metadata=[*self._metadata, *metadata]
        )
        try:
            async for answer in call:
                yield _stream_result(answer)
                slots.release()  # once the caller has taken the answer: it is part of the window
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncFaceShieldClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
