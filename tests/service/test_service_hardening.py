"""Malformed callers: bytes that are not a protobuf, oversized fields and echoed values. Each is
answered with a typed status (INVALID_ARGUMENT, a field violation, an ErrorInfo) whose trailers
stay small whatever the caller sent."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, random_image, test_settings
from tests.service.test_service_bad_inputs import raw


@pytest.fixture(scope="module")
def server():
    with ServerThread(test_settings(metrics_port=-1)) as s:
        yield s


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def details(error: grpc.RpcError) -> tuple[error_details_pb2.BadRequest | None, error_details_pb2.ErrorInfo | None]:
    bad, info = None, None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for any_msg in status_pb2.Status.FromString(value).details:
                if any_msg.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    any_msg.Unpack(bad)
                elif any_msg.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    any_msg.Unpack(info)
    return bad, info


NOT_PROTOBUF = [b"\xff\xff\xff", b"\x0a\x05abc", b"\x08" + b"\xff" * 11, b"\x0b\x14"]


@pytest.mark.parametrize(
    ("rpc", "message_type"),
    [
        ("ProtectImage", "faceshield.v1.ProtectImageRequest"),
        ("Evaluate", "faceshield.v1.EvaluateRequest"),
        ("GetModelInfo", "faceshield.v1.GetModelInfoRequest"),
    ],
)
@pytest.mark.parametrize("data", NOT_PROTOBUF, ids=["wire-type-7", "truncated", "long-varint", "bad-group"])
def test_bytes_that_are_not_a_protobuf_are_a_bad_request(channel, rpc, message_type, data):
    call = channel.unary_unary(f"/faceshield.v1.FaceShield/{rpc}")  # no serializer: raw bytes go out
    with pytest.raises(grpc.RpcError) as caught:
        call(data, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "DecodeError" not in caught.value.details()
    bad, info = details(caught.value)
    assert [v.field for v in bad.field_violations] == [message_type]
    assert info.reason == "INVALID_INPUT" and info.metadata["request_id"]


def test_an_unparsable_stream_item_fails_alone(channel):
    good = pb.ProtectImageRequest(
        request_id="good", image=raw(random_image(32)), method="pgd", steps=1, targets=["Male"]
    ).SerializeToString()
    stream = channel.stream_stream("/faceshield.v1.FaceShield/ProtectStream")
    answers = [pb.ProtectStreamResponse.FromString(a) for a in stream(iter([b"\xff\xff", good]), timeout=30)]
    assert sorted(a.WhichOneof("outcome") for a in answers) == ["error", "result"]
    (error,) = [a.error for a in answers if a.WhichOneof("outcome") == "error"]
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in error.details)
    assert bad.field_violations[0].field == "faceshield.v1.ProtectImageRequest"
    assert [a.request_id for a in answers if a.WhichOneof("outcome") == "result"] == ["good"]


def test_server_still_serves(channel):
    stub = pb_grpc.FaceShieldStub(channel)
    assert stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=20).resolution == 32
