"""Deadlines and cancellation stop the work; health on start-up and drain; SIGTERM loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, random_image, test_settings, tiny_engine

ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
FULL_STEPS = 100  # each step costs 5 generator passes (all targets) at 128x128: seconds in all
CENTRE = pb.FaceDetection(enabled=False)  # the images are noise, with no face: the centre square, asked for


def raw(image: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(data=image.tobytes(), width=image.shape[1], height=image.shape[0]))


def wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def slow_request(rid: str) -> pb.ProtectImageRequest:
    return pb.ProtectImageRequest(
        request_id=rid, image=raw(random_image(64)), method="pgd", steps=FULL_STEPS, detect_faces=CENTRE
    )


@pytest.fixture(scope="module")
def slow_server():
    settings = test_settings(max_steps=FULL_STEPS)
    with ServerThread(settings, tiny_engine(settings, resolution=128, conv_dim=8)) as s:
        yield s


def test_deadline_stops_the_work(slow_server):
    s = slow_server
    before = dict(s.engine.counters)
    with grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ProtectImage(slow_request("late"), timeout=0.5)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: s.engine.counters["items_cancelled"] > before["items_cancelled"])
    wait_for(lambda: s.server.batcher.running == 0)
    spent = s.engine.counters["image_steps"] - before["image_steps"]
    assert spent < FULL_STEPS * 5 // 2, f"{spent} image-steps: the work ran on past the deadline"
    assert s.engine.counters["images_protected"] == before["images_protected"]
    wait_for(
        lambda: (
            s.metric("faceshield_items_dropped_total", {"reason": "deadline"})
            + s.metric("faceshield_items_dropped_total", {"reason": "cancelled"})
            >= 1
        ),
        10,
    )


async def test_cancellation_stops_the_work(slow_server):
    s = slow_server
    before = dict(s.engine.counters)
    async with grpc.aio.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        call = stub.ProtectImage(slow_request("gone"), timeout=60)
        await asyncio.to_thread(wait_for, lambda: s.server.batcher.running == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    await asyncio.to_thread(wait_for, lambda: s.engine.counters["items_cancelled"] > before["items_cancelled"])
    await asyncio.to_thread(wait_for, lambda: s.server.batcher.running == 0)
    spent = s.engine.counters["image_steps"] - before["image_steps"]
    assert spent < FULL_STEPS * 5 // 2
    await asyncio.to_thread(
        wait_for, lambda: s.metric("faceshield_items_dropped_total", {"reason": "cancelled"}) >= 1, 10
    )


def test_cancelled_item_leaves_its_batch_mates_alone(slow_server):
    """One caller of a shared batch gives up; the other still gets its full result."""
    s = slow_server
    with grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        request = pb.ProtectImageRequest(
            image=raw(random_image(64)), method="pgd", steps=8, targets=["Male"], detect_faces=CENTRE
        )
        keeper = stub.ProtectImage.future(request, timeout=60)
        quitter = stub.ProtectImage.future(request, timeout=60)
        wait_for(lambda: s.server.batcher.running >= 1)
        quitter.cancel()
        assert keeper.result().width == 64


def test_health_on_start_up_and_drain():
    release = threading.Event()
    settings = test_settings(drain_seconds=0.5)

    def slow_loader():
        assert release.wait(30)
        return tiny_engine(settings)

    with ServerThread(settings, slow_loader, wait_ready=False) as s, grpc.insecure_channel(s.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.FaceShieldStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="faceshield.v1.FaceShield"), timeout=60)
        seen = []
        watcher = threading.Thread(target=lambda: seen.extend(r.status for r in watch), daemon=True)
        watcher.start()
        assert health.Check(health_pb2.HealthCheckRequest()).status == NOT_SERVING
        with pytest.raises(grpc.RpcError) as caught:  # models still loading
            stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5, wait_for_ready=False)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        release.set()
        s.call(s.server.wait_ready(30))
        assert health.Check(health_pb2.HealthCheckRequest()).status == SERVING
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5).resolution == 32

        stopping = asyncio.run_coroutine_threadsafe(s.server.stop(5.0), s.loop)
        wait_for(lambda: health.Check(health_pb2.HealthCheckRequest()).status == NOT_SERVING, 5)
        with pytest.raises(grpc.RpcError) as caught:  # draining: new calls refused
            stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        stopping.result(30)
        watcher.join(10)
        assert seen == [NOT_SERVING, SERVING, NOT_SERVING]


def _start_cli_server(extra: list[str]) -> tuple[subprocess.Popen, int, int]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faceshield.cli",
            "serve",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--metrics-port",
            "0",
            "--no-saliency",
            "--log-format",
            "text",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("faceshield listening on port"), line + proc.stderr.read()
    words = line.split()
    return proc, int(words[4]), int(words[6])


def _refused(stub) -> bool:
    try:
        stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
        return False
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e
        return True


def _in_flight(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for row in text.splitlines():
        if row.startswith("faceshield_in_flight_calls "):
            return float(row.split()[1])
    return 0.0


@pytest.mark.slow
def test_sigterm_with_calls_in_flight_loses_none():
    # The demo set: its StarGAN edits "Male", and its small generator keeps the calls seconds long.
    proc, port, metrics_port = _start_cli_server(
        ["--grace", "60", "--drain", "2", "--max-batch", "4", "--models", "demo"]
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            wait_for(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING, 120)
            stub = pb_grpc.FaceShieldStub(channel)
            request = pb.ProtectImageRequest(
                image=raw(random_image(64)), method="pgd", steps=10, targets=["Male"], detect_faces=CENTRE
            )
            with ThreadPoolExecutor(8) as pool:
                calls = [pool.submit(stub.ProtectImage, request, timeout=120) for _ in range(8)]
                wait_for(lambda: _in_flight(metrics_port) == 8 or all(c.done() for c in calls), 60)
                assert not any(c.done() for c in calls), "calls finished before SIGTERM; make them slower"
                proc.send_signal(signal.SIGTERM)
                wait_for(lambda: _refused(stub), 30)  # new calls are refused while in-flight ones finish
                results = [c.result(timeout=120) for c in calls]
            assert all(r.width == 64 for r in results)
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read()
        assert "draining" in err and "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
