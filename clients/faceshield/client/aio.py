"""asyncio client: the twin of `FaceShieldClient`, same arguments, same results.

async with AsyncFaceShieldClient("localhost:50051") as client:
    result = await client.protect(array, method="pgd")
    async for answer in client.protect_stream(paths, window=8):
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health_pb2

from faceshield.v1 import faceshield_pb2 as pb

from . import _common as c
from . import _stubs
from .errors import FaceShieldError, UnavailableError, from_rpc_error
from .images import ImageInput
from .policy import Policy
from .results import EvaluateResult, ModelInfo, ProtectResult, StreamResult
from .sync import _stream_result

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class AsyncFaceShieldClient(c.ClientBase[_stubs.AsyncFaceShieldStub, _stubs.AsyncHealthStub]):
    """See `FaceShieldClient` for the arguments. Create it inside a running event loop."""

    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _insecure_channel = staticmethod(grpc.aio.insecure_channel)

    async def _unary(
        self,
        method: _stubs.UnaryUnary[_Request, Awaitable[_Response]],
        request: _Request,
        deadline: c.Deadline,
        metadata: _stubs.Metadata,
    ) -> _Response:
        end = None if deadline.seconds is None else time.monotonic() + deadline.seconds
        attempt = 0
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                return await method(request, timeout=left, metadata=[*self._metadata, *metadata])
            except grpc.RpcError as rpc_error:
                error = c.explain_deadline(from_rpc_error(rpc_error), deadline)
            wait = c.overload_wait(
                error, attempt, self.overload_retries, None if end is None else end - time.monotonic()
            )
            if wait is None:
                raise error
            attempt += 1
            await asyncio.sleep(wait)

    async def default_timeout(self, steps: int | None = None) -> float | None:
        """As `FaceShieldClient.default_timeout`."""
        return (await self._deadline(c.USE_DEFAULT, steps)).seconds

    async def _deadline(self, timeout: c.Timeout, steps: int | None) -> c.Deadline:
        if timeout is not c.USE_DEFAULT or self.timeout is not c.USE_DEFAULT:
            return self._fixed(timeout)
        if not self._estimate_fresh():
            try:
                await self.model_info(timeout=c.ESTIMATE_TIMEOUT)
            except FaceShieldError:
                pass  # the call itself will say what is wrong; meanwhile the fixed default
        return self._derived(steps)

    async def protect(
        self,
        image: ImageInput,
        *,
        method: str | None = None,
        epsilon: float | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        seed: int | None = None,
        targets: Sequence[str] | None = None,
        original_attributes: Sequence[float] | None = None,
        face_box: c.FaceBoxes | None = None,
        detect_faces: bool = True,
        no_face: str = "refuse",
        policy: Policy | str | None = None,
        saliency_mask: ImageInput | None = None,
        return_masks: bool = False,
        return_generator_outputs: bool = False,
        request_id: str | None = None,
        timeout: c.Timeout = c.USE_DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> ProtectResult:
        """As `FaceShieldClient.protect`."""
        request = c.protect_request(
            image,
            request_id=request_id,
            method=method,
            epsilon=epsilon,
            steps=steps,
            step_size=step_size,
            seed=seed,
            targets=targets,
            original_attributes=original_attributes,
            face_box=face_box,
            detect_faces=detect_faces,
            no_face=no_face,
            policy=policy,
            saliency_mask=saliency_mask,
            return_masks=return_masks,
            return_generator_outputs=return_generator_outputs,
        )
        deadline = await self._deadline(timeout, steps)
        return ProtectResult.from_response(await self._unary(self.stub.ProtectImage, request, deadline, metadata))

    async def evaluate(
        self,
        original: ImageInput,
        protected: ImageInput | None = None,
        *,
        method: str | None = None,
        epsilon: float | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        seed: int | None = None,
        targets: Sequence[str] | None = None,
        original_attributes: Sequence[float] | None = None,
        face_box: c.FaceBoxes | None = None,
        detect_faces: bool = True,
        no_face: str = "refuse",
        policy: Policy | str | None = None,
        saliency_mask: ImageInput | None = None,
        request_id: str | None = None,
        timeout: c.Timeout = c.USE_DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> EvaluateResult:
        """As `FaceShieldClient.evaluate`."""
        request = c.evaluate_request(
            original,
            protected,
            request_id=request_id,
            method=method,
            epsilon=epsilon,
            steps=steps,
            step_size=step_size,
            seed=seed,
            targets=targets,
            original_attributes=original_attributes,
            face_box=face_box,
            detect_faces=detect_faces,
            no_face=no_face,
            policy=policy,
            saliency_mask=saliency_mask,
        )
        deadline = await self._deadline(timeout, steps)
        return EvaluateResult.from_response(await self._unary(self.stub.Evaluate, request, deadline, metadata))

    async def model_info(self, *, timeout: c.Timeout = c.USE_DEFAULT) -> ModelInfo:
        deadline = self._fixed(timeout, c.DEFAULT_TIMEOUT)
        info = ModelInfo.from_response(
            await self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), deadline, ())
        )
        self._remember(info)
        return info

    async def health(self, service: str = "", *, timeout: c.Timeout = c.USE_DEFAULT) -> str:
        deadline = self._fixed(timeout, c.DEFAULT_TIMEOUT)
        reply = await self._unary(self._health.Check, health_pb2.HealthCheckRequest(service=service), deadline, ())
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))  # str: grpc_health is untyped

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
        images: Iterable[c.StreamItem] | AsyncIterable[c.StreamItem],
        *,
        window: int = c.DEFAULT_STREAM_WINDOW,
        method: str | None = None,
        epsilon: float | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        seed: int | None = None,
        targets: Sequence[str] | None = None,
        original_attributes: Sequence[float] | None = None,
        face_box: c.FaceBoxes | None = None,
        detect_faces: bool = True,
        no_face: str = "refuse",
        policy: Policy | str | None = None,
        saliency_mask: ImageInput | None = None,
        return_masks: bool = False,
        return_generator_outputs: bool = False,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> AsyncIterator[StreamResult]:
        """As `FaceShieldClient.protect_stream`; `images` may also be an async iterable."""
        options = c.stream_options(
            method=method,
            epsilon=epsilon,
            steps=steps,
            step_size=step_size,
            seed=seed,
            targets=targets,
            original_attributes=original_attributes,
            face_box=face_box,
            detect_faces=detect_faces,
            no_face=no_face,
            policy=policy,
            saliency_mask=saliency_mask,
            return_masks=return_masks,
            return_generator_outputs=return_generator_outputs,
        )
        deadline = self._fixed(timeout)
        slots = asyncio.Semaphore(window)

        async def requests() -> AsyncIterator[pb.ProtectImageRequest]:
            source = images.__aiter__() if isinstance(images, AsyncIterable) else iter(images)
            i = 0
            while True:
                await slots.acquire()  # a slot first, then the next image: none is read early
                try:
                    # which of the two `source` is follows from `images`
                    if isinstance(images, AsyncIterable):
                        item = await cast(AsyncIterator[Any], source).__anext__()
                    else:
                        item = next(cast(Iterator[Any], source))
                except (StopIteration, StopAsyncIteration):
                    return
                yield c.stream_item(i, item, options)
                i += 1

        call = self.stub.ProtectStream(requests(), timeout=deadline.seconds, metadata=[*self._metadata, *metadata])
        try:
            async for answer in call:
                yield _stream_result(answer)
                slots.release()  # once the caller has taken the answer: it is part of the window
        except grpc.RpcError as rpc_error:
            raise c.explain_deadline(from_rpc_error(rpc_error), deadline) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncFaceShieldClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
