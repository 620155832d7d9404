"""Streams with bad items mixed in, many concurrent callers, overload."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2

from faceshield.client import AsyncFaceShieldClient, FaceShieldClient, OverloadedError
from faceshield.engine import FaceShieldEngine
from faceshield.engine.pipeline import Limits
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, png_bytes, random_image, test_settings, tiny_models


def raw(image: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(data=image.tobytes(), width=image.shape[1], height=image.shape[0]))


FIXED = pb.Policy(kind="fixed")  # the paper's schedule: this test is about the stream, not the verdict
# The images are noise, with no face, and these tests are about load, not face finding: they ask
# for the centre square (SDK calls: detect_faces=False).
CENTRE = pb.FaceDetection(enabled=False)


def test_stream_of_200_with_bad_items():
    """Every valid image answered, every bad one answered with its own error, ids all matched."""
    good_png = png_bytes(random_image(32, seed=5))
    requests, bad_ids = [], set()
    for i in range(200):
        rid = f"img-{i}"
        if i % 10 == 3:
            requests.append(
                pb.ProtectImageRequest(
                    request_id=rid,
                    image=pb.Image(encoded=b"not an image %d" % i),
                    method="pgd",
                    steps=1,
                    targets=["Male"],
                )
            )
            bad_ids.add(rid)
        elif i % 25 == 7:
            requests.append(
                pb.ProtectImageRequest(
                    request_id=rid, image=raw(random_image(32)), method="pgd", steps=1, targets=["Male"], epsilon=-1.0
                )
            )
            bad_ids.add(rid)
        else:
            image = pb.Image(encoded=good_png) if i % 2 else raw(random_image(32, seed=i))
            requests.append(
                pb.ProtectImageRequest(
                    request_id=rid,
                    image=image,
                    method="pgd",
                    steps=1,
                    seed=i,
                    targets=["Male"],
                    policy=FIXED,
                    detect_faces=CENTRE,
                )
            )
    with ServerThread(test_settings(max_batch=16)) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        answers = list(stub.ProtectStream(iter(requests), timeout=120))
        ids = [a.request_id for a in answers]
        assert sorted(ids) == sorted(r.request_id for r in requests)  # each answered exactly once
        errors = {a.request_id: a.error for a in answers if a.WhichOneof("outcome") == "error"}
        assert set(errors) == bad_ids
        for rid, status in errors.items():
            assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            bad = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad) for d in status.details)
            assert bad.field_violations[0].field == ("epsilon" if "epsilon" in status.message else "image"), rid
        for a in answers:
            if a.WhichOneof("outcome") == "result":
                assert a.result.request_id == a.request_id and a.result.width == 32
        assert s.metric("faceshield_batch_size_count") >= 1
        assert s.metric("faceshield_batch_size_sum") > s.metric("faceshield_batch_size_count")  # real batches
        # The server is still healthy and serving.
        client = FaceShieldClient(s.target)
        assert client.health() == "SERVING"
        assert client.protect(random_image(32), method="pgd", steps=1, targets=["Male"], detect_faces=False).width == 32
        client.close()


def test_stream_with_sdk_keeps_a_bounded_window():
    images = [random_image(32, seed=i) for i in range(24)] + [b"\x89PNG\r\n\x1a\n broken"]
    with ServerThread() as s, FaceShieldClient(s.target) as client:
        sent = threading.Semaphore(0)
        in_flight, peak = 0, 0
        lock = threading.Lock()

        def counted():
            nonlocal in_flight, peak
            for item in images:
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                sent.release()
                yield item

        answers = []
        for answer in client.protect_stream(
            counted(), window=4, method="pgd", steps=1, targets=["Male"], detect_faces=False
        ):
            with lock:
                in_flight -= 1
            answers.append(answer)
        assert len(answers) == 25
        assert sorted(int(a.request_id) for a in answers) == list(range(25))
        assert [a.request_id for a in answers if not a.ok] == ["24"]
        assert answers[[a.request_id for a in answers].index("24")].error.fields == ["image"]
        # Never more than the window read and unanswered.
        assert peak <= 4


async def test_32_concurrent_callers_share_batches():
    with ServerThread(test_settings(max_batch=16, batch_wait_ms=20)) as s:
        async with AsyncFaceShieldClient(s.target) as client:

            async def caller(i: int):
                return await client.protect(
                    random_image(32, seed=i),
                    request_id=f"c{i}",
                    method="pgd",
                    steps=1,
                    seed=i,
                    targets=["Male"],
                    detect_faces=False,
                )

            results = await asyncio.gather(*(caller(i) for i in range(32)))
        assert [r.request_id for r in results] == [f"c{i}" for i in range(32)]
        assert all(r.width == 32 for r in results)
        batches = s.metric("faceshield_batch_size_count")
        singles = s.metric("faceshield_batch_size_bucket", {"le": "1.0"})
        assert batches - singles >= 1, "no batch larger than one image"
        assert max(r.timings["batch_size"] for r in results) > 1
        # Handlers count an answer just after sending it: wait for the last ones.
        wait_for(lambda: s.metric("faceshield_responses_total", {"rpc": "ProtectImage", "code": "OK"}) >= 32, 10)
        assert s.metric("faceshield_responses_total", {"rpc": "ProtectImage", "code": "OK"}) == 32
        # The same figures over the Prometheus endpoint.
        text = urllib.request.urlopen(f"http://127.0.0.1:{s.server.metrics_port}/metrics", timeout=10).read().decode()
        assert 'faceshield_responses_total{code="OK",rpc="ProtectImage"} 32.0' in text
        assert "faceshield_batch_size_bucket" in text and "faceshield_queue_depth" in text


class GatedEngine(FaceShieldEngine):
    """Holds every batch at a gate, so that a test decides when the device is busy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()

    def protect(self, *args, **kwargs):
        assert self.gate.wait(60), "gate never opened"
        return super().protect(*args, **kwargs)


def wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def retry_delay(error: grpc.RpcError) -> float | None:
    for key, value in error.trailing_metadata():
        if key == "grpc-status-details-bin":
            for d in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.RetryInfo()
                if d.Unpack(info):
                    return info.retry_delay.ToNanoseconds() / 1e9
    return None


@pytest.mark.slow
def test_overload_gives_resource_exhausted_with_retry_info_and_recovers():
    settings = test_settings(queue_length=1, max_batch=1, batch_wait_ms=0)
    engine = GatedEngine(tiny_models(), limits=Limits(max_batch=1))
    with ServerThread(settings, engine) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        request = pb.ProtectImageRequest(
            image=raw(random_image(32)), method="pgd", steps=1, targets=["Male"], detect_faces=CENTRE
        )
        engine.gate.clear()
        running = stub.ProtectImage.future(request, timeout=60)
        wait_for(lambda: s.server.batcher.running == 1)
        queued = stub.ProtectImage.future(request, timeout=60)
        wait_for(lambda: s.server.batcher.depth == 1)

        # Queue full: refused at once, with a retry delay; never an unbounded backlog.
        with pytest.raises(grpc.RpcError) as caught:
            stub.ProtectImage(request, timeout=60)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_delay(caught.value) > 0
        with FaceShieldClient(s.target, overload_retries=0) as impatient:
            with pytest.raises(OverloadedError) as sdk_caught:
                impatient.protect(random_image(32), method="pgd", steps=1, targets=["Male"], detect_faces=False)
        assert sdk_caught.value.retry_after > 0 and sdk_caught.value.reason == "OVERLOADED"
        assert s.server.batcher.depth == 1

        # The SDK honours RetryInfo: it waits as told and gets through once the queue drains.
        with FaceShieldClient(s.target) as patient:
            threading.Timer(0.3, engine.gate.set).start()
            assert (
                patient.protect(random_image(32), method="pgd", steps=1, targets=["Male"], detect_faces=False).width
                == 32
            )

        # Three refusals in all (raw stub, impatient SDK, the patient SDK's first try), counted
        # by the server once its handlers have finished.
        def refused():
            return s.metric("faceshield_responses_total", {"rpc": "ProtectImage", "code": "RESOURCE_EXHAUSTED"})

        wait_for(lambda: refused() >= 3, 5)
        assert refused() == 3
        assert running.result().width == 32 and queued.result().width == 32

        # Recovered.
        assert stub.ProtectImage(request, timeout=60).width == 32
        assert s.server.batcher.depth == 0


def test_queue_bytes_refuses_with_retry_info_while_the_count_has_room():
    image = random_image(32)
    settings = test_settings(queue_length=64, queue_bytes=image.nbytes + 100, max_batch=1, batch_wait_ms=0)
    engine = GatedEngine(tiny_models(), limits=Limits(max_batch=1))
    with ServerThread(settings, engine) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        request = pb.ProtectImageRequest(image=raw(image), method="pgd", steps=1, targets=["Male"], detect_faces=CENTRE)
        engine.gate.clear()
        running = stub.ProtectImage.future(request, timeout=60)
        wait_for(lambda: s.server.batcher.running == 1)
        queued = stub.ProtectImage.future(request, timeout=60)
        wait_for(lambda: s.server.batcher.depth == 1)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ProtectImage(request, timeout=60)  # one image more would exceed queue_bytes
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_delay(caught.value) > 0 and "MiB waiting" in caught.value.details()
        assert s.server.batcher.depth == 1
        engine.gate.set()
        assert running.result().width == 32 and queued.result().width == 32
        assert stub.ProtectImage(request, timeout=60).width == 32
