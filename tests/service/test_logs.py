"""Structured logs: JSON lines with the request id; nothing outside the allow-list gets through."""

from __future__ import annotations

import io
import json
import logging

import grpc
import pytest

from faceshield.service.logs import JsonFormatter, RequestIdFilter, loggable_request_id, make_handler, request_id_var
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, test_settings


def test_json_log_line_has_request_id_and_no_image_bytes():
    record = logging.LogRecord(
        "faceshield.service.servicer", logging.INFO, __file__, 1, "ProtectImage %s", ("OK",), None
    )
    record.rpc, record.code, record.seconds = "ProtectImage", "OK", 0.25
    record.image = b"\x89PNG secret face pixels"  # a careless extra
    token = request_id_var.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = JsonFormatter().format(record)
    out = json.loads(line)
    assert out["msg"] == "ProtectImage OK" and out["request_id"] == "req-42"
    assert (out["rpc"], out["code"], out["seconds"]) == ("ProtectImage", "OK", 0.25)
    assert "image" not in out and "PNG" not in line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_hostile_request_id_reaches_the_log_bounded_and_escaped(fmt):
    """A 1 MB id full of newlines and terminal escapes, sent over gRPC: the server's log lines
    stay short, hold no raw control character, and show the id escaped and cut."""
    stream = io.StringIO()
    handler = make_handler(fmt, stream)
    service_log = logging.getLogger("faceshield.service")
    level = service_log.level
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    hostile = ("evil\n2026-01-01 INFO forged line \x1b[31m" * 30_000)[:1_000_000]
    try:
        with ServerThread(test_settings(metrics_port=-1)) as s, grpc.insecure_channel(s.target) as channel:
            stub = pb_grpc.FaceShieldStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ProtectImage(pb.ProtectImageRequest(request_id=hostile), timeout=20)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        service_log.removeHandler(handler)
        service_log.setLevel(level)
    lines = stream.getvalue().splitlines()
    (line,) = [ln for ln in lines if "ProtectImage INVALID_ARGUMENT" in ln]
    assert all(len(ln) < 500 for ln in lines)
    assert not any(c in stream.getvalue() for c in "\x1b\r")
    assert "forged line" not in "".join(ln.split(" ", 1)[0] for ln in lines)  # no line starts forged
    logged = json.loads(line)["request_id"] if fmt == "json" else line.split("[", 1)[1]
    assert logged.startswith("evil\\n2026-01-01 INFO forged line \\x1b[31m") and "more characters]" in logged


def test_loggable_request_id_leaves_ordinary_ids_alone():
    assert loggable_request_id("3f2b-client-7") == "3f2b-client-7"
    assert loggable_request_id("é€-ok") == "é€-ok"
    assert len(loggable_request_id("\x00" * 1000)) < 160
