"""The limits a server advertises are the limits it applies."""

from __future__ import annotations

import grpc
import pytest

from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, random_image, test_settings
from tests.service.test_service_bad_inputs import CENTRE, field_of, raw


def test_max_steps_above_the_engine_default_is_honoured():
    """FACESHIELD_MAX_STEPS=200 allows 150 steps (the engine's own default limit is 100)."""
    with ServerThread(test_settings(max_steps=200, metrics_port=-1)) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=20).limits.max_steps == 200
        request = pb.ProtectImageRequest(
            image=raw(random_image(32)), method="pgd", steps=150, targets=["Male"], detect_faces=CENTRE
        )  # noise, no face: the centre square, asked for
        reply = stub.ProtectImage(request, timeout=60)
        assert reply.attack.steps == 150
        request.steps = 201
        with pytest.raises(grpc.RpcError) as caught:
            stub.ProtectImage(request, timeout=20)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_of(caught.value) == "steps" and "[1, 200]" in caught.value.details()
