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
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2

from faceshield.v1 import faceshield_pb2 as pb

from . import _common as c
from . import _stubs
from .errors import FaceShieldError, UnavailableError, from_rpc_error, from_status
from .images import ImageInput
from .policy import Policy
from .results import EvaluateResult, ModelInfo, ProtectResult, StreamResult

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class FaceShieldClient(c.ClientBase[_stubs.FaceShieldStub, _stubs.HealthStub]):
    """One reusable channel to a FaceShield server (or several, with load_balancing="round_robin").

    Args:
        target: "host:port", or "dns:///name:port" to balance over every address of a name.
        token: bearer token sent with every call.
        tls: use TLS with the system's roots; `root_certificates` (PEM bytes or path) trusts a
            private CA; `certificate_chain` + `private_key` present a client certificate (mTLS).
        timeout: deadline of every call in seconds (None: no deadline). Default: protect and
            evaluate size theirs from the server's measured seconds per image (see
            `default_timeout`); other calls get DEFAULT_TIMEOUT (60 s); streams none.
        load_balancing: e.g. "round_robin" (default: gRPC's pick_first).
        overload_retries: how many times to retry RESOURCE_EXHAUSTED after the server's RetryInfo
            delay, within the deadline. UNAVAILABLE is retried by the channel (`retry`).
    """

    _secure_channel = staticmethod(grpc.secure_channel)
    _insecure_channel = staticmethod(grpc.insecure_channel)

    # -- plumbing --------------------------------------------------------------------------
    def _unary(
        self,
        method: _stubs.UnaryUnary[_Request, _Response],
        request: _Request,
        deadline: c.Deadline,
        metadata: _stubs.Metadata,
    ) -> _Response:
        end = None if deadline.seconds is None else time.monotonic() + deadline.seconds
        attempt = 0
        while True:
            left = None if end is None else max(end - time.monotonic(), 0.0)
            try:
                return method(request, timeout=left, metadata=[*self._metadata, *metadata])
            except grpc.RpcError as rpc_error:
                error = c.explain_deadline(from_rpc_error(rpc_error), deadline)
            wait = c.overload_wait(
                error, attempt, self.overload_retries, None if end is None else end - time.monotonic()
            )
            if wait is None:
                raise error
            attempt += 1
            time.sleep(wait)

    def default_timeout(self, steps: int | None = None) -> float | None:
        """The deadline (seconds) that `protect` and `evaluate` get without a timeout=: the
        constructor's timeout if one was given, else sized from the server's measured seconds
        per image (see DEADLINE_MARGIN), at least DEFAULT_TIMEOUT. Asks the server at most once
        per ESTIMATE_TTL seconds."""
        return self._deadline(c.USE_DEFAULT, steps).seconds

    def _deadline(self, timeout: c.Timeout, steps: int | None) -> c.Deadline:
        if timeout is not c.USE_DEFAULT or self.timeout is not c.USE_DEFAULT:
            return self._fixed(timeout)
        if not self._estimate_fresh():
            try:
                self.model_info(timeout=c.ESTIMATE_TIMEOUT)
            except FaceShieldError:
                pass  # the call itself will say what is wrong; meanwhile the fixed default
        return self._derived(steps)

    # -- calls -----------------------------------------------------------------------------
    def protect(
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
        """Protect one image (a path, PNG/JPEG bytes, a uint8 array or a PIL image).

        Unset attack fields take the server's defaults (`model_info().defaults`): `method` one of
        identity (the product's default), union-saliency (the paper's), saliency-aware, pgd,
        ifgsm, eot-blur, spread-spectrum; `epsilon` the L-inf bound in [-1, 1] pixel units;
        `steps`, `step_size` of I-FGSM; `seed` of the random start. `targets`: the edits to
        protect against (default: the server's); `original_attributes`: the image's own 0/1
        values; `face_box`: (left, top, right, bottom) in pixels, or a list of them. Without a
        box the server finds every face, as the command line does (`detect_faces=False`: the
        centre square instead; `no_face`: "refuse" an image with none, the default, or protect
        its "centre" square); the result's `faces` and `face_source` say what was used.
        `saliency_mask`: a float array in [0, 1] or grayscale PNG replacing the server's saliency
        model. `return_masks` and `return_generator_outputs` ask for extras. `timeout`: seconds,
        None for no deadline (default: see `default_timeout`)."""
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
        deadline = self._deadline(timeout, steps)
        return ProtectResult.from_response(self._unary(self.stub.ProtectImage, request, deadline, metadata))

    def evaluate(
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
        """docs/method.md §5 metrics of `protected` against `original`; without `protected`, the server
        protects `original` first with the attack fields (as in `protect`)."""
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
        deadline = self._deadline(timeout, steps)
        return EvaluateResult.from_response(self._unary(self.stub.Evaluate, request, deadline, metadata))

    def model_info(self, *, timeout: c.Timeout = c.USE_DEFAULT) -> ModelInfo:
        deadline = self._fixed(timeout, c.DEFAULT_TIMEOUT)
        info = ModelInfo.from_response(self._unary(self.stub.GetModelInfo, pb.GetModelInfoRequest(), deadline, ()))
        self._remember(info)
        return info

    def health(self, service: str = "", *, timeout: c.Timeout = c.USE_DEFAULT) -> str:
        """ "SERVING", "NOT_SERVING", ... for the server ("") or a service name."""
        deadline = self._fixed(timeout, c.DEFAULT_TIMEOUT)
        reply = self._unary(self._health.Check, health_pb2.HealthCheckRequest(service=service), deadline, ())
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))  # str: grpc_health is untyped

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
        images: Iterable[c.StreamItem],
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
    ) -> Iterator[StreamResult]:
        """Protect many images over one stream, at most `window` in flight; yields answers as
        they come (not in order). Items: images, (request_id, image) pairs, or requests; items
        without an id get their index as id. A bad item yields an error, not an exception.
        The attack fields (as in `protect`) apply to every item that is not a ready request.
        `timeout`: one deadline for the whole stream (default none)."""
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
        slots = threading.Semaphore(window)
        done = threading.Event()

        def requests() -> Iterator[pb.ProtectImageRequest]:
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

        call = self.stub.ProtectStream(requests(), timeout=deadline.seconds, metadata=[*self._metadata, *metadata])
        try:
            for answer in call:
                yield _stream_result(answer)
                slots.release()  # once the caller has taken the answer: it is part of the window
        except grpc.RpcError as rpc_error:
            raise c.explain_deadline(from_rpc_error(rpc_error), deadline) from None
        finally:
            done.set()
            call.cancel()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> FaceShieldClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stream_result(answer: pb.ProtectStreamResponse) -> StreamResult:
    if answer.WhichOneof("outcome") == "error":
        return StreamResult(answer.request_id, error=from_status(answer.error))
    return StreamResult(answer.request_id, result=ProtectResult.from_response(answer.result))
