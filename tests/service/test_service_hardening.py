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
from tests.service.test_service_bad_inputs import CENTRE, raw


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
        request_id="good", image=raw(random_image(32)), method="pgd", steps=1, targets=["Male"], detect_faces=CENTRE
    ).SerializeToString()  # noise, no face: the centre square, asked for
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


def trailer_bytes(error: grpc.RpcError) -> int:
    return sum(len(k) + len(v) for k, v in error.trailing_metadata() or ())


LONG_ID = "r" * 100_000
OVERSIZED = [
    ("request_id", dict(request_id=LONG_ID)),
    ("request_id", dict(request_id="é\n\x1b" * 43)),  # 129 characters
    ("original_attributes", dict(original_attributes=[0.5] * 10_000)),
    ("original_attributes", dict(original_attributes=[1, 0, 0, 1, 0, 1])),
    ("targets", dict(targets=[f"t{i}" for i in range(10_000)])),
    ("targets", dict(targets=["Male", "x" * 5_000])),
    ("targets", dict(targets=["€" * 11])),
    ("method", dict(method="m" * 5_000)),
    ("method", dict(method="ü" * 16)),
]


@pytest.mark.parametrize(("field", "fields"), OVERSIZED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(OVERSIZED)])
def test_absurd_field_sizes_are_refused_with_small_trailers(channel, field, fields):
    """Refused up front, by size, without echoing the value: the caller sees INVALID_ARGUMENT,
    not RESOURCE_EXHAUSTED from trailers above its metadata limit."""
    stub = pb_grpc.FaceShieldStub(channel)
    args = dict(image=raw(random_image(32)), method="pgd", steps=1, targets=["Male"])
    args.update(fields)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ProtectImage(pb.ProtectImageRequest(**args), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    bad, info = details(caught.value)
    assert [v.field for v in bad.field_violations] == [field]
    assert trailer_bytes(caught.value) < 1024
    assert len(info.metadata["request_id"]) <= 128
    if field == "request_id" and len(fields["request_id"]) > 1000:
        assert info.metadata["request_id"].startswith("r" * 64) and "more characters]" in info.metadata["request_id"]


def test_evaluate_refuses_an_overlong_request_id(channel):
    stub = pb_grpc.FaceShieldStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Evaluate(pb.EvaluateRequest(request_id=LONG_ID, original=raw(random_image(32))), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details(caught.value)[0].field_violations] == ["request_id"]
    assert trailer_bytes(caught.value) < 1024


def test_a_stream_answer_echoes_an_overlong_id_cut_short(channel):
    stub = pb_grpc.FaceShieldStub(channel)
    request = pb.ProtectImageRequest(request_id=LONG_ID, image=raw(random_image(32)), method="pgd", steps=1)
    (answer,) = stub.ProtectStream(iter([request]), timeout=20)
    assert answer.WhichOneof("outcome") == "error" and answer.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(answer.request_id) <= 128 and answer.request_id.startswith("r" * 64)
    assert len(answer.error.SerializeToString()) < 1024


@pytest.mark.parametrize("text", ["d" * 1_000_000, "€" * 100_000, "\x00\n" * 50_000])
def test_every_echoed_value_is_bounded_whatever_raised_it(text):
    """The backstop: an error built from caller data anywhere (engine or service) is cut short."""
    from faceshield.engine.errors import InvalidInputError
    from faceshield.service import errors

    status = errors.to_rpc_status(InvalidInputError("image" * 100, text), request_id=text)
    assert len(status.SerializeToString()) < 2048
    assert len(status.message.encode()) <= errors.MAX_MESSAGE_BYTES and "more characters]" in status.message
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    status.details[0].Unpack(bad)
    status.details[1].Unpack(info)
    assert len(bad.field_violations[0].field.encode()) <= errors.MAX_FIELD_BYTES
    assert len(info.metadata["request_id"].encode()) <= errors.MAX_REQUEST_ID_BYTES
    grpc_status = errors.to_grpc_status(status)
    assert sum(len(v) for _, v in grpc_status.trailing_metadata) + len(grpc_status.details.encode()) < 4096
