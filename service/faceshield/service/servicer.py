"""The FaceShield servicer: messages in, engine work through the batcher, messages out.

It translates only: `convert` decodes and validates, `jobs` calls the engine, `errors` maps
exceptions to rich statuses. Decoding and encoding run on worker threads and the engine on its
own thread, so the event loop only moves messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

import grpc

from faceshield.engine import FaceShieldEngine
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc

from . import convert, errors, responses
from .batcher import Done, MicroBatcher
from .estimate import CostEstimate
from .jobs import ProtectJob, run_evaluate, run_protect
from .logs import request_id_var
from .metrics import ServiceMetrics
from .parsing import Unparsable
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Backend:
    """What the servicer works with; `engine` is None until the models are loaded and warm."""

    settings: Settings
    batcher: MicroBatcher
    metrics: ServiceMetrics
    engine: FaceShieldEngine | None = None
    models: pb.ModelVersions = field(default_factory=pb.ModelVersions)
    draining: bool = False
    cost: CostEstimate | None = None  # GetModelInfo's expected_seconds_per_image

    def ready_engine(self) -> FaceShieldEngine:
        if self.draining:
            raise errors.Draining("the server is shutting down; retry on another replica", retry_after=1.0)
        if self.engine is None:
            raise errors.NotReady("the models are still loading; retry shortly", retry_after=1.0)
        return self.engine


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _unary(rpc: str):
    """Count, time and log a unary call; turn any exception into a rich status."""

    def wrap(method):
        @functools.wraps(method)
        async def handler(self: FaceShieldServicer, request, context: grpc.aio.ServicerContext):
            rid = convert.request_id(getattr(request, "request_id", ""))
            token = request_id_var.set(rid)
            m = self.backend.metrics
            m.requests.labels(rpc).inc()
            m.in_flight.inc()
            t0 = time.monotonic()
            code = "OK"
            try:
                if isinstance(request, Unparsable):
                    raise request.error()
                return await method(self, request, context, rid, t0)
            except asyncio.CancelledError:
                remaining = context.time_remaining()
                code = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
                raise
            except Exception as exc:
                status = errors.to_rpc_status(exc, rid)
                code = errors.code_of(status).name
                if code == "INTERNAL":
                    log.exception("%s failed", rpc, extra={"rpc": rpc})
                await context.abort_with_status(errors.to_grpc_status(status))
            finally:
                seconds = time.monotonic() - t0
                m.in_flight.dec()
                m.responses.labels(rpc, code).inc()
                m.latency.labels(rpc).observe(seconds)
                log.info("%s %s", rpc, code, extra={"rpc": rpc, "code": code, "seconds": round(seconds, 4)})
                request_id_var.reset(token)

        return handler

    return wrap


class FaceShieldServicer(pb_grpc.FaceShieldServicer):
    def __init__(self, backend: Backend):
        self.backend = backend

    # -- shared steps ----------------------------------------------------------------------
    async def _protect(
        self, job: ProtectJob, engine: FaceShieldEngine, deadline: float | None, t0: float, wait_for_room: bool = False
    ) -> pb.ProtectImageResponse:
        done: Done = await self.backend.batcher.submit(
            job.key,
            job,
            functools.partial(run_protect, engine),
            deadline=deadline,
            wait_for_room=wait_for_room,
            nbytes=job.nbytes,
        )
        self.backend.metrics.queue_seconds.observe(done.queue_seconds)
        timings = pb.Timings(
            queue_seconds=done.queue_seconds, compute_seconds=done.result.compute_seconds, batch_size=done.batch_size
        )
        resp = await asyncio.to_thread(responses.protect_response, job, done.result, self.backend.models, timings)
        resp.timings.total_seconds = time.monotonic() - t0
        return resp

    # -- RPCs ------------------------------------------------------------------------------
    @_unary("ProtectImage")
    async def ProtectImage(self, request, context, rid, t0):
        engine = self.backend.ready_engine()
        self.backend.batcher.check_room()  # refuse before spending time on decoding
        job = await asyncio.to_thread(convert.protect_job, request, engine, rid, self.backend.settings)
        return await self._protect(job, engine, _deadline(context), t0)

    @_unary("Evaluate")
    async def Evaluate(self, request, context, rid, t0):
        engine = self.backend.ready_engine()
        self.backend.batcher.check_room()
        job = await asyncio.to_thread(convert.evaluate_job, request, engine, rid, self.backend.settings)
        if isinstance(job, ProtectJob):
            return responses.evaluate_from_protect(await self._protect(job, engine, _deadline(context), t0))
        done = await self.backend.batcher.submit(
            job.key, job, functools.partial(run_evaluate, engine), deadline=_deadline(context), nbytes=job.nbytes
        )
        timings = pb.Timings(
            queue_seconds=done.queue_seconds, batch_size=1, compute_seconds=time.monotonic() - t0 - done.queue_seconds
        )
        resp = responses.evaluate_response(job, done.result, self.backend.models, timings)
        resp.timings.total_seconds = time.monotonic() - t0
        return resp

    @_unary("GetModelInfo")
    async def GetModelInfo(self, request, context, rid, t0):
        b = self.backend
        expected = b.cost.seconds_per_image() if b.cost is not None else 0.0
        return responses.model_info(b.ready_engine(), b.settings, expected)

    async def ProtectStream(self, request_iterator, context: grpc.aio.ServicerContext):
        """Items run concurrently, up to the stream window; answers go out as they finish.

        The window counts every item from the moment it is read until its answer has been
        written, so it bounds answers held as well as work started: a client that stops reading
        stops the server after at most a window of answers (HTTP/2 flow control pushes back on
        the writes, the reader stops taking requests, and flow control pushes back on the sender).
        """
        rpc = "ProtectStream"
        b = self.backend
        try:
            engine = b.ready_engine()
        except errors.ServiceError as exc:
            b.metrics.responses.labels(rpc, exc.code.name).inc()
            await context.abort_with_status(errors.to_grpc_status(errors.to_rpc_status(exc)))
        deadline = _deadline(context)
        window = asyncio.Semaphore(b.settings.stream_window)
        answers: asyncio.Queue = asyncio.Queue()
        end_of_input = object()
        tasks: set[asyncio.Task] = set()
        b.metrics.in_flight.inc()

        async def one(request: pb.ProtectImageRequest) -> None:
            rid = convert.request_id(request.request_id)
            request_id_var.set(rid)  # this task's own context
            t0 = time.monotonic()
            b.metrics.requests.labels(rpc).inc()
            code = "OK"
            try:
                if isinstance(request, Unparsable):
                    raise request.error()
                job = await asyncio.to_thread(convert.protect_job, request, engine, rid, self.backend.settings)
                answer = pb.ProtectStreamResponse(
                    request_id=rid, result=await self._protect(job, engine, deadline, t0, wait_for_room=True)
                )
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception as exc:
                status = errors.to_rpc_status(exc, rid)
                code = errors.code_of(status).name
                if code == "INTERNAL":
                    log.error("stream item failed", exc_info=exc, extra={"rpc": rpc})
                answer = pb.ProtectStreamResponse(request_id=rid, error=status)
            finally:
                b.metrics.responses.labels(rpc, code).inc()
                b.metrics.latency.labels(rpc).observe(time.monotonic() - t0)
            await answers.put(answer)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await window.acquire()  # bounded read-ahead: stop reading when the window is full
                    await answers.put(1)  # one more answer owed
                    task = asyncio.get_running_loop().create_task(one(request))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await answers.put(end_of_input)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client's half of the stream broke
                await answers.put(exc)

        reader = asyncio.get_running_loop().create_task(read())
        owed, reading, sent = 0, True, 0
        t_stream = time.monotonic()
        try:
            while reading or owed:
                msg = await answers.get()
                if msg is end_of_input:
                    reading = False
                elif isinstance(msg, int):
                    owed += msg
                elif isinstance(msg, BaseException):
                    raise msg
                else:
                    owed -= 1
                    sent += 1
                    yield msg  # returns once gRPC has taken the answer: flow control holds it here
                    window.release()
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()
            b.metrics.in_flight.dec()
            log.info(
                "%s closed", rpc, extra={"rpc": rpc, "items": sent, "seconds": round(time.monotonic() - t_stream, 4)}
            )
