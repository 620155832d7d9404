"""Each RPC over a real channel with raw stubs; responses equal the engine's own results."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from faceshield.engine import ENSURE, AttackConfig, ProtectRequest
from faceshield.service import healthcheck
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.helpers import CPU_PRECISION
from tests.service.servers import ServerThread, decode_png, png_bytes, random_image, tiny_engine


@pytest.fixture(scope="module")
def server():
    with ServerThread() as s:
        yield s


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.FaceShieldStub(channel)


def raw(image: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(data=image.tobytes(), width=image.shape[1], height=image.shape[0]))


# The images are noise, with no face: the requests ask for the centre square, the engine's default
# that the replies are compared with (unset, the server would look for a face and refuse).
CENTRE = pb.FaceDetection(enabled=False)


def test_protect_matches_engine(stub):
    image = random_image(40, seed=1, width=48)
    reply = stub.ProtectImage(
        pb.ProtectImageRequest(
            request_id="r-1",
            image=raw(image),
            method="pgd",
            steps=2,
            seed=7,
            targets=["Male", "Young"],
            original_attributes=[1, 0, 0, 1, 0],
            detect_faces=CENTRE,
        ),
        timeout=30,
    )
    engine = tiny_engine()  # same seeded weights, called directly
    expected = engine.protect(  # the service's default policy: verified protection (ensure)
        [ProtectRequest(image, [1, 0, 0, 1, 0], ["Male", "Young"], seed=7)],
        AttackConfig.for_method("pgd", steps=2),
        policy=ENSURE,
    )[0]
    assert reply.attack.policy.kind == "ensure" and reply.verdict.protected == expected.verdict.protected
    assert reply.request_id == "r-1" and reply.face_source == pb.FACE_SOURCE_CENTRE
    assert (reply.width, reply.height) == (48, 40)
    np.testing.assert_array_equal(decode_png(reply.protected_png), expected.protected)
    assert reply.input_metrics.psnr == pytest.approx(expected.input.psnr)
    assert reply.input_metrics.ssim == pytest.approx(expected.input.ssim)
    assert [t.target for t in reply.target_metrics] == ["Male", "Young"]
    for got, want in zip(reply.target_metrics, expected.targets, strict=True):
        assert got.mse == pytest.approx(want.mse)
        assert got.success == want.success
        assert got.masked_mse == pytest.approx(want.masked_mse)
    assert reply.attack.method == "pgd" and reply.attack.steps == 2 and reply.attack.seed == 7
    assert reply.models.name == "tiny-test" and reply.models.hashes["generator"] == "0" * 64
    assert reply.timings.batch_size >= 1 and reply.timings.compute_seconds > 0
    assert reply.timings.total_seconds >= reply.timings.compute_seconds


def test_protect_png_input_and_extras(stub):
    image = random_image(32, seed=2)
    mask = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    reply = stub.ProtectImage(
        pb.ProtectImageRequest(
            image=pb.Image(encoded=png_bytes(image)),
            method="union-saliency",
            steps=1,
            targets=["Male"],
            saliency_mask=pb.Mask(float32=mask.astype("<f4").tobytes()),
            extras=pb.Extras(masks=True, generator_outputs=True),
            detect_faces=CENTRE,
        ),
        timeout=30,
    )
    assert reply.request_id  # made up by the server
    out = decode_png(reply.protected_png)
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image.astype(int)).max() <= int(0.05 * 127.5)
    assert {m.name for m in reply.masks} == {"saliency", "manipulation", "union"}
    for m in reply.masks:
        assert len(m.float32) == m.width * m.height * 4 == 32 * 32 * 4
    assert [g.target for g in reply.generator_outputs] == ["Male"]
    assert decode_png(reply.generator_outputs[0].protected_png).shape == (32, 32, 3)


def test_evaluate_matches_engine(stub):
    original = random_image(32, seed=3)
    protected = np.clip(original.astype(int) + np.random.default_rng(0).integers(-3, 4, original.shape), 0, 255)
    protected = protected.astype(np.uint8)
    reply = stub.Evaluate(
        pb.EvaluateRequest(
            original=raw(original),
            protected=pb.Image(encoded=png_bytes(protected)),
            targets=["Black_Hair"],
            detect_faces=CENTRE,
        ),
        timeout=30,
    )
    inp, rows = tiny_engine().evaluate(original, protected, None, ["Black_Hair"])
    assert not reply.protected_by_server and not reply.protected_png
    assert reply.face_source == pb.FACE_SOURCE_CENTRE
    assert reply.input_metrics.l2 == pytest.approx(inp.l2)
    assert reply.input_metrics.psnr == pytest.approx(inp.psnr)
    assert reply.target_metrics[0].mse == pytest.approx(rows[0].mse)
    assert reply.success_rate == float(rows[0].success)


def test_evaluate_original_only_protects_first(stub):
    original = random_image(32, seed=4)
    reply = stub.Evaluate(
        pb.EvaluateRequest(
            request_id="e-1",
            original=raw(original),
            method="pgd",
            steps=1,
            seed=3,
            targets=["Young"],
            detect_faces=CENTRE,
        ),
        timeout=30,
    )
    expected = tiny_engine().protect(
        [ProtectRequest(original, targets=["Young"], seed=3)], AttackConfig.for_method("pgd", steps=1), policy=ENSURE
    )[0]
    assert reply.request_id == "e-1" and reply.protected_by_server and reply.face_source == pb.FACE_SOURCE_CENTRE
    np.testing.assert_array_equal(decode_png(reply.protected_png), expected.protected)
    assert reply.target_metrics[0].mse == pytest.approx(expected.targets[0].mse)
    assert reply.attack.method == "pgd"


def test_model_info(stub):
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    assert info.models.name == "tiny-test" and not info.models.trained
    assert info.resolution == 32
    assert list(info.attributes) == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert "union-saliency" in info.methods and info.defaults.method == "identity"  # the product's default
    # An unset detect_faces means: find the faces, refuse an image without one (as the CLI).
    assert info.defaults.detect_faces == pb.FaceDetection(enabled=True, no_face=pb.FaceDetection.NO_FACE_REFUSE)
    assert info.device == "cpu"
    assert info.limits.max_batch == 16 and info.limits.queue_length == 64
    assert info.limits.max_message_bytes == 64 * 1024 * 1024
    # How it runs: chosen per device (bf16 on a CPU with native bf16, else fp32), no saliency model in this set, no
    # memory-sized batches off CUDA.
    assert (info.execution.precision, info.execution.saliency_runtime, info.execution.memory_batch) == (
        CPU_PRECISION,
        "",
        0,
    )
    assert info.execution.compile == "none"


def test_bad_parameter_has_field_violation(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.ProtectImage(pb.ProtectImageRequest(image=raw(random_image()), epsilon=2.0), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert bad.field_violations[0].field == "epsilon"


def test_health_and_reflection(server):
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "faceshield.v1.FaceShield"):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=name)).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert {"faceshield.v1.FaceShield", "grpc.health.v1.Health"} <= services
        assert db.FindFileContainingSymbol("faceshield.v1.FaceShield").name == "faceshield/v1/faceshield.proto"
    # The container's probe agrees.
    assert healthcheck.main(["--port", str(server.port)]) == 0
