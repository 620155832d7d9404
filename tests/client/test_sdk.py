"""The Python SDK: inputs, request building, error mapping, and round trips over real channels."""

from __future__ import annotations

import json
import threading

import grpc
import numpy as np
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from PIL import Image

from faceshield.client import (
    AsyncFaceShieldClient,
    DeadlineExceededError,
    FaceShieldClient,
    InputError,
    InvalidArgumentError,
    OverloadedError,
    RetryPolicy,
    UnavailableError,
    from_status,
    protect_request,
)
from faceshield.client._common import channel_options, service_config
from faceshield.client.images import to_image, to_mask
from faceshield.engine import ENSURE, AttackConfig, ProtectRequest
from tests.helpers import CPU_PRECISION
from tests.service.servers import ServerThread, png_bytes, random_image, test_settings, tiny_engine

IMAGE = random_image(32, seed=11)
# Noise has no face, and the server finds faces by default: the round trips ask for the centre
# square, the engine's default that they compare against.
CENTRE = {"detect_faces": False}


# -- inputs, checked before anything is sent -------------------------------------------------
def test_image_inputs(tmp_path):
    path = tmp_path / "face.png"
    path.write_bytes(png_bytes(IMAGE))
    assert to_image(str(path)).encoded == path.read_bytes()
    assert to_image(path).encoded == path.read_bytes()
    assert to_image(path.read_bytes()).encoded == path.read_bytes()
    raw = to_image(IMAGE).raw
    assert (raw.width, raw.height, raw.data) == (32, 32, IMAGE.tobytes())
    gray = to_image(IMAGE[..., 0]).raw
    assert len(gray.data) == 32 * 32 * 3
    assert to_image(Image.fromarray(IMAGE)).raw.data == IMAGE.tobytes()
    rgba = to_image(Image.fromarray(np.dstack([IMAGE, IMAGE[..., :1]]), "RGBA"))
    assert rgba.encoded.startswith(b"\x89PNG")  # the server judges transparency


@pytest.mark.parametrize("bad", [IMAGE.astype(np.float32), IMAGE[..., :2], b"GIF89a...", b"", 42, "missing.png"])
def test_bad_image_inputs_raise_before_sending(bad):
    with pytest.raises(InputError) as caught:
        to_image(bad)
    assert caught.value.fields == ["image"]
    assert isinstance(caught.value, ValueError)


def test_mask_inputs():
    values = np.linspace(0, 1, 32 * 32, dtype=np.float64).reshape(32, 32)
    assert np.frombuffer(to_mask(values).float32, "<f4").reshape(32, 32) == pytest.approx(values, abs=1e-6)
    assert np.frombuffer(to_mask((values * 255).astype(np.uint8)).float32, "<f4").max() <= 1.0
    assert to_mask(png_bytes(np.zeros((32, 32), np.uint8), "L")).png.startswith(b"\x89PNG")
    with pytest.raises(InputError):
        to_mask(values * 2)
    with pytest.raises(InputError):
        to_mask(b"not a png")


def test_request_builder_sets_only_what_was_given():
    msg = protect_request(
        IMAGE,
        method="pgd",
        epsilon=0.03,
        steps=4,
        seed=9,
        targets=["Male"],
        original_attributes=[0, 1, 0, 1, 1],
        face_box=(0, 0, 32, 32),
        return_masks=True,
    )
    assert (msg.method, msg.steps, msg.seed, list(msg.targets)) == ("pgd", 4, 9, ["Male"])
    assert msg.epsilon == pytest.approx(0.03) and not msg.HasField("step_size")
    assert msg.face_box.right == 32 and msg.extras.masks and not msg.extras.generator_outputs
    bare = protect_request(IMAGE)
    assert not any(bare.HasField(f) for f in ("epsilon", "steps", "step_size", "seed", "face_box"))
    # Face finding is always sent, so the result does not hang on the server's default.
    assert bare.HasField("detect_faces") and bare.detect_faces.enabled
    assert bare.detect_faces.no_face == bare.detect_faces.NO_FACE_REFUSE
    assert not protect_request(IMAGE, **CENTRE).detect_faces.enabled
    for bad, field in (
        (dict(steps=2.5), "steps"),
        (dict(epsilon="big"), "epsilon"),
        (dict(targets="Male"), "targets"),
        (dict(face_box=(1, 2, 3)), "face_box"),
        (dict(seed=True), "seed"),
    ):
        with pytest.raises(InputError) as caught:
            protect_request(IMAGE, **bad)
        assert caught.value.fields == [field]


def test_channel_config_retries_unavailable_and_can_balance():
    config = json.loads(service_config(None, None) or "{}")
    assert config == {}
    opts = dict(channel_options(1024, RetryPolicy(), "round_robin"))
    config = json.loads(opts["grpc.service_config"])
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"] and policy["maxAttempts"] >= 2
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert opts["grpc.enable_retries"] == 1 and opts["grpc.max_send_message_length"] == 1024


def test_status_maps_to_typed_error_with_details():
    details = []
    for d in (
        error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field="epsilon", description="too big")]
        ),
        error_details_pb2.ErrorInfo(reason="INVALID_INPUT", domain="faceshield.v1", metadata={"request_id": "r9"}),
    ):
        a = any_pb2.Any()
        a.Pack(d)
        details.append(a)
    error = from_status(status_pb2.Status(code=3, message="epsilon: too big", details=details))
    assert isinstance(error, InvalidArgumentError) and error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.fields == ["epsilon"] and error.request_id == "r9" and error.reason == "INVALID_INPUT"
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromMilliseconds(1500)
    a = any_pb2.Any()
    a.Pack(retry)
    overloaded = from_status(status_pb2.Status(code=8, message="busy", details=[a]))
    assert isinstance(overloaded, OverloadedError) and overloaded.retry_after == pytest.approx(1.5)


# -- round trips -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with ServerThread() as s:
        yield s


def test_sync_round_trips(server, tmp_path):
    expected = tiny_engine().protect(  # the server's default policy: ensure
        [ProtectRequest(IMAGE, targets=["Male"], seed=5)], AttackConfig.for_method("pgd", steps=2), policy=ENSURE
    )[0]
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes(IMAGE))
    with FaceShieldClient(server.target) as client:
        assert client.health() == "SERVING"
        info = client.model_info()
        assert info.resolution == 32 and info.attributes[3] == "Male" and info.limits["max_batch"] == 16
        assert info.execution == {
            "precision": CPU_PRECISION,
            "saliency_runtime": "",
            "memory_batch": 0,
            "compile": "none",
        }
        for source in (IMAGE, path, Image.fromarray(IMAGE)):
            result = client.protect(source, method="pgd", steps=2, seed=5, targets=["Male"], request_id="s1", **CENTRE)
            assert result.request_id == "s1" and result.face_source == "centre"
            np.testing.assert_array_equal(result.to_numpy(), expected.protected)
            assert result.targets[0].mse == pytest.approx(expected.targets[0].mse)
            assert result.input_metrics["psnr"] == pytest.approx(expected.input.psnr)
        saved = result.save(tmp_path / "out.png")
        assert np.array_equal(np.asarray(Image.open(saved)), expected.protected)

        evaluated = client.evaluate(IMAGE, result.png, targets=["Male"], **CENTRE)
        assert not evaluated.protected_by_server
        assert evaluated.targets[0].mse == pytest.approx(expected.targets[0].mse)
        server_side = client.evaluate(IMAGE, method="pgd", steps=2, seed=5, targets=["Male"], **CENTRE)
        assert server_side.protected_by_server and server_side.png == result.png

        with_extras = client.protect(
            IMAGE,
            method="saliency-aware",
            steps=1,
            targets=["Male"],
            saliency_mask=np.full((32, 32), 0.5),
            return_masks=True,
            return_generator_outputs=True,
            **CENTRE,
        )
        assert with_extras.masks["saliency"].shape == (32, 32)
        assert set(with_extras.generator_outputs) == {"Male"}

        with pytest.raises(InvalidArgumentError) as caught:
            client.protect(IMAGE, method="pgd", steps=0)
        assert caught.value.fields == ["steps"] and caught.value.request_id


async def test_async_round_trips(server):
    expected = tiny_engine().protect(
        [ProtectRequest(IMAGE, targets=["Young"], seed=1)], AttackConfig.for_method("pgd", steps=1), policy=ENSURE
    )[0]
    async with AsyncFaceShieldClient(server.target) as client:
        assert await client.health() == "SERVING"
        assert (await client.model_info()).device == "cpu"
        result = await client.protect(IMAGE, method="pgd", steps=1, seed=1, targets=["Young"], **CENTRE)
        np.testing.assert_array_equal(result.to_numpy(), expected.protected)
        evaluated = await client.evaluate(IMAGE, result.png, targets=["Young"], **CENTRE)
        assert evaluated.targets[0].mse == pytest.approx(expected.targets[0].mse)

        async def images():
            for i in range(6):
                yield (f"a{i}", random_image(32, seed=i))
            yield ("bad", b"\x89PNG\r\n\x1a\nbroken")

        answers = [
            a
            async for a in client.protect_stream(images(), window=2, method="pgd", steps=1, targets=["Male"], **CENTRE)
        ]
        assert sorted(a.request_id for a in answers) == sorted([f"a{i}" for i in range(6)] + ["bad"])
        assert [a.error.fields for a in answers if not a.ok] == [["image"]]
        with pytest.raises(InvalidArgumentError):
            await client.protect(IMAGE, epsilon=-1.0)


def test_round_robin_over_two_replicas():
    settings = test_settings(metrics_port=-1)
    with ServerThread(settings) as a, ServerThread(settings) as b:
        target = f"ipv4:///127.0.0.1:{a.port},127.0.0.1:{b.port}"
        with FaceShieldClient(target, load_balancing="round_robin") as client:
            for _ in range(6):
                client.model_info()
        calls = [s.metric("faceshield_requests_total", {"rpc": "GetModelInfo"}) for s in (a, b)]
        assert calls[0] >= 1 and calls[1] >= 1 and sum(calls) == 6
        with FaceShieldClient(f"dns:///127.0.0.1:{a.port}", load_balancing="round_robin") as client:
            assert client.health() == "SERVING"


def test_unavailable_is_retried_by_the_channel_and_deadlines_apply():
    release = threading.Event()
    settings = test_settings(metrics_port=-1)

    def loader():
        assert release.wait(30)
        return tiny_engine(settings)

    with ServerThread(settings, loader, wait_ready=False) as s:
        with FaceShieldClient(s.target) as client:
            with pytest.raises((UnavailableError, DeadlineExceededError)):
                client.model_info(timeout=0.3)  # still loading; the deadline bounds the retries
            threading.Timer(0.3, release.set).start()
            assert client.model_info(timeout=30).resolution == 32  # retried through the warm-up
        assert s.metric("faceshield_responses_total", {"rpc": "GetModelInfo", "code": "UNAVAILABLE"}) >= 2
