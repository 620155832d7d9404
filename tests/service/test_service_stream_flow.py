"""ProtectStream under a slow reader: the window bounds answers held, not only work started."""

from __future__ import annotations

import threading
import time

import grpc

from faceshield.engine import FaceShieldEngine
from faceshield.engine.pipeline import Limits
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, random_image, test_settings, tiny_models

WINDOW = 2
IMAGES = 30


class CountingEngine(FaceShieldEngine):
    """Counts the images it has protected (from the engine thread)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.done = 0
        self._count_lock = threading.Lock()

    def protect(self, requests, *args, **kwargs):
        out = super().protect(requests, *args, **kwargs)
        with self._count_lock:
            self.done += len(requests)
        return out


def settled(read, quiet: float = 1.5, timeout: float = 20.0) -> int:
    """`read()` once it has not changed for `quiet` seconds."""
    end = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def test_a_client_that_stops_reading_holds_the_server_to_its_window():
    """30 images sent, no answer read: the server computes at most the window, then waits;
    once the client reads, all 30 arrive. (It used to compute and queue all 30.)

    The client turns off gRPC's bandwidth-delay probing, so its receive window stays at
    HTTP/2's initial 64 KiB: with probing on, the client's own library takes megabytes of
    answers into its memory unread (its choice; the server then holds none of them), which
    would hide how many the server keeps."""
    engine = CountingEngine(tiny_models(), limits=Limits(max_batch=4))
    settings = test_settings(stream_window=WINDOW, max_batch=4, metrics_port=-1)
    # 160x160 noise: each answer's PNG is ~77 kB, more than the client's flow-control window,
    # so the server's first write blocks.
    images = [random_image(160, seed=i) for i in range(IMAGES)]
    requests = [
        pb.ProtectImageRequest(
            request_id=str(i),
            image=pb.Image(raw=pb.RawImage(data=img.tobytes(), width=160, height=160)),
            method="pgd",
            steps=1,
            targets=["Male"],
            detect_faces=pb.FaceDetection(enabled=False),  # noise, no face: the centre square
        )
        for i, img in enumerate(images)
    ]
    no_probing = [("grpc.http2.bdp_probe", 0)]
    with ServerThread(settings, engine) as s, grpc.insecure_channel(s.target, options=no_probing) as channel:
        warm_up = engine.done
        answers = pb_grpc.FaceShieldStub(channel).ProtectStream(iter(requests), timeout=120)
        computed_unread = settled(lambda: engine.done - warm_up)
        assert 1 <= computed_unread <= WINDOW, computed_unread
        received = list(answers)
    assert sorted(int(a.request_id) for a in received) == list(range(IMAGES))
    assert all(a.WhichOneof("outcome") == "result" for a in received)
    assert engine.done - warm_up == IMAGES
