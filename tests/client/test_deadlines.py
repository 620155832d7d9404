"""The SDK's default deadline comes from what the server measured (GetModelInfo's
expected_seconds_per_image), a deadline that runs out says which one and how to raise it, and
the calls take named, typed keywords."""

from __future__ import annotations

import inspect

import pytest

import faceshield.client._common as common
from faceshield.client import AsyncFaceShieldClient, DeadlineExceededError, FaceShieldClient, from_rpc_error
from tests.service.servers import ServerThread, random_image, test_settings, tiny_engine

IMAGE = random_image(32, seed=3)  # noise, no face: calls ask for the centre square (detect_faces=False)


@pytest.fixture(scope="module")
def server():
    with ServerThread(test_settings(metrics_port=-1)) as s:
        yield s


def test_default_deadline_follows_the_servers_estimate(server, monkeypatch):
    monkeypatch.setattr(server.server.cost, "seconds_per_image", lambda: 100.0)
    with FaceShieldClient(server.target) as client:
        assert client.default_timeout() == 500.0  # DEADLINE_MARGIN x 100 s
        assert client.default_timeout(steps=20) == 1000.0  # twice the server's default 10 steps
    monkeypatch.setattr(server.server.cost, "seconds_per_image", lambda: 0.0)
    with FaceShieldClient(server.target) as client:
        assert client.default_timeout() == common.DEFAULT_TIMEOUT  # nothing measured: the fixed default
    asked = server.metric("faceshield_requests_total", {"rpc": "GetModelInfo"})
    with FaceShieldClient(server.target, timeout=7.5) as client:
        assert client.default_timeout() == 7.5
        client.protect(IMAGE, method="pgd", steps=1, targets=["Male"], detect_faces=False)
    assert server.metric("faceshield_requests_total", {"rpc": "GetModelInfo"}) == asked  # not asked


async def test_async_client_sizes_its_deadline_the_same_way(server, monkeypatch):
    monkeypatch.setattr(server.server.cost, "seconds_per_image", lambda: 30.0)
    async with AsyncFaceShieldClient(server.target) as client:
        assert await client.default_timeout() == 150.0


@pytest.fixture(scope="module")
def slow_server():
    settings = test_settings(metrics_port=-1, max_steps=100)
    with ServerThread(settings, tiny_engine(settings, resolution=128, conv_dim=8)) as s:
        yield s


def test_deadline_errors_say_which_deadline_and_how_to_raise_it(slow_server, monkeypatch):
    slow = dict(method="pgd", steps=100, targets=["Male"], detect_faces=False)
    with FaceShieldClient(slow_server.target) as client:
        with pytest.raises(DeadlineExceededError) as caught:
            client.protect(random_image(128), timeout=0.2, **slow)
        text = str(caught.value)
        assert "the call's 0.2 s deadline ran out (set by this call's timeout=)" in text
        assert "pass timeout=SECONDS" in text and "timeout=None" in text

        # The derived default, made short: a server that claims to be fast, a low floor.
        monkeypatch.setattr(common, "DEFAULT_TIMEOUT", 0.1)
        monkeypatch.setattr(
            slow_server.server.cost, "seconds_per_image", lambda: 0.004
        )  # x 5 x 10 (100 steps): a 0.2 s deadline
        with pytest.raises(DeadlineExceededError) as caught:
            client.protect(random_image(128), **slow)
    assert "the SDK's default: 5 x the server's expected 0.0 s per image x 10 for 100 steps" in str(caught.value)
    with FaceShieldClient(slow_server.target, timeout=0.2) as client:
        with pytest.raises(DeadlineExceededError, match=r"set by the client's timeout="):
            client.evaluate(random_image(128), **slow)


class _Call(Exception):
    """What a failed call looks like to `from_rpc_error` (code, details, trailers)."""

    def __init__(self, code, details, trailers):
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def test_status_trailer_is_read_with_rpc_status_and_a_mismatch_is_ignored():
    import grpc
    from google.rpc import status_pb2

    status = status_pb2.Status(code=3, message="epsilon: too big")
    trailer = (("grpc-status-details-bin", status.SerializeToString()),)
    ok = from_rpc_error(_Call(grpc.StatusCode.INVALID_ARGUMENT, "epsilon: too big", trailer))
    assert ok.code == grpc.StatusCode.INVALID_ARGUMENT and ok.message == "epsilon: too big"
    # A proxy rewrote the status: the trailer no longer describes this call, so it is not used.
    other = from_rpc_error(_Call(grpc.StatusCode.UNAVAILABLE, "upstream reset", trailer))
    assert other.code == grpc.StatusCode.UNAVAILABLE and other.message == "upstream reset"


def test_calls_take_named_typed_keywords_only():
    for cls in (FaceShieldClient, AsyncFaceShieldClient):
        for name in ("protect", "evaluate", "protect_stream"):
            params = inspect.signature(getattr(cls, name)).parameters.values()
            assert not [p for p in params if p.kind is p.VAR_KEYWORD], (cls.__name__, name)
            keywords = [p for p in params if p.kind is p.KEYWORD_ONLY]
            assert all(p.annotation is not inspect.Parameter.empty for p in keywords), (cls.__name__, name)
        sync_kw = inspect.signature(FaceShieldClient.protect).parameters
        assert list(inspect.signature(AsyncFaceShieldClient.protect).parameters) == list(sync_kw)
    for name in ("method", "epsilon", "steps", "step_size", "seed", "targets", "face_box", "timeout"):
        assert name in inspect.signature(FaceShieldClient.protect).parameters
    with FaceShieldClient("127.0.0.1:9") as client, pytest.raises(TypeError, match="epsilonn"):
        client.protect(IMAGE, epsilonn=0.1)  # a misspelt option fails here, not silently
