"""Blocking client.

from faceshield.client import FaceShieldClient

with FaceShieldClient("localhost:50051") as client:
    result = client.protect("face.png", targets=["Male"])
    result.save("face-protected.png")
    for answer in client.protect_stream(["a.png", "b.png"], window=8):
        print(answer.request_id, answer.ok)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2

from faceshield.v1 import faceshield_pb2 as pb

from . import _common as c
from .errors import FaceShieldError, UnavailableError, from_rpc_error, from_status
from .images import ImageInput
from .results import EvaluateResult, ModelInfo, ProtectResult, StreamResult


class FaceShieldClient(c.ClientBase):
    """One reusable channel to a FaceShield server (or several, with load_balancing="round_robin").

    Args:
        target: "host:port", or "dns:///name:port" to balance over every address of a name.
        token: bearer token sent with every call.
        tls: use TLS with the system's roots; `root_certificates` (PEM bytes or path) trusts a
            private CA; `certificate_chain` + `private_key` present a client certificate (mTLS).
        timeout: default deadline of every call in seconds (None: no deadline).
        load_balancing: e.g. "round_robin" (default: gRPC's pick_first).
        overload_retries: how many times to retry RESOURCE_EXHAUSTED after the server's RetryInfo
            delay, within the deadline. UNAVAILABLE is retried by the channel (`retry`).
    """

    _secure_channel = staticmethod(grpc.secure_channel)
    _insecure_channel = staticmethod(grpc.insecure_channel)

    # -- plumbing --------------------------------------------------------------------------
    def _unary(self, method, request, timeout, metadata):
        timeout = self._timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                return method(request, timeout=left, metadata=[*self._metadata, *metadata])
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            wait = c.overload_wait(
                error, attempt, self.overload_retries, None if end is None else end - time.monotonic()
            )
            if wait is None:
                raise error
            attempt += 1
            time.sleep(wait)

    # -- calls -----------------------------------------------------------------------------
    def protect(
        self, image: ImageInput, *, timeout=c.USE_DEFAULT, metadata: Sequence[tuple[str, str]] = (), **options
    ) -> ProtectResult:
        """Protect one image. Options: see `faceshield.client.protect_request` (method, epsilon,
        steps, step_size, seed, targets, original_attributes, face_box, saliency_mask,
        return_masks, return_generator_outputs, request_id)."""
        request = c.protect_request(image, **options)
        return ProtectResult.from_response(self._unary(self.stub.ProtectImage, request, timeout, metadata))

    def evaluate(
        self,
        original: ImageInput,
        protected: ImageInput | None = None,
        *,
        timeout=c.USE_DEFAULT,
        metadata: Sequence[tuple[str, str]] = (),
        **options,
    ) -> EvaluateResult:
        """SPEC 4 metrics of `protected` against `original`; without `protected`, the server
        protects `original` first (attack options as in `protect`)."""
        request = c.evaluate_request(original, protected, **options)
        return EvaluateResult.from_response(self._unary(self.stub.Evaluate, request, timeout, metadata))

    def model_info(self, *, timeout=c.USE_DEFAULT) -> ModelInfo:
        return ModelInfo.from_response(self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), timeout, ()))

    def health(self, service: str = "", *, timeout=c.USE_DEFAULT) -> str:
        """ "SERVING", "NOT_SERVING", ... for the server ("") or a service name."""
        reply = self._unary(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout, ())
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def wait_until_serving(self, timeout: float = 60.0, poll: float = 0.2) -> None:
        """Block until health says SERVING (models loaded and warm)."""
        end = time.monotonic() + timeout
        while True:
            try:
                if self.health(timeout=max(min(poll * 5, end - time.monotonic()), 0.01)) == "SERVING":
                    return
            except FaceShieldError:
                pass
            if time.monotonic() >= end:
                raise UnavailableError(f"{self.target} was not SERVING within {timeout} s")
            time.sleep(poll)

    def protect_stream(
        self,
        images: Iterable,
        *,
        window: int = c.DEFAULT_STREAM_WINDOW,
        timeout=None,
        metadata: Sequence[tuple[str, str]] = (),
        **options,
    ) -> Iterator[StreamResult]:
        """Protect many images over one stream, at most `window` in flight; yields answers as
        they come (not in order). Items: images, (request_id, image) pairs, or requests; items
        without an id get their index as id. A bad item yields an error, not an exception."""
        slots = threading.Semaphore(window)
        done = threading.Event()

        def requests():
            source = iter(images)
            i = 0
            while True:
                # Take a slot before reading the next image, so none is read (or timed) early.
                while not slots.acquire(timeout=0.1):
                    if done.is_set():
                        return
                if done.is_set():
                    return
                try:
                    item = next(source)
                except StopIteration:
                    return
                yield c.stream_item(i, item, options)
                i += 1

        call = self.stub.ProtectStream(
            requests(), timeout=self._timeout(timeout), metadata=[*self._metadata, *metadata]
        )
        try:
            for answer in call:
                yield _stream_result(answer)
                slots.release()  # once the caller has taken the answer: it is part of the window
        except grpc.RpcError as rpc_error:
            raise from_rpc_error(rpc_error) from None
        finally:
            done.set()
            call.cancel()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> FaceShieldClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stream_result(answer: pb.ProtectStreamResponse) -> StreamResult:
    if answer.WhichOneof("outcome") == "error":
        return StreamResult(answer.request_id, error=from_status(answer.error))
    return StreamResult(answer.request_id, result=ProtectResult.from_response(answer.result))
