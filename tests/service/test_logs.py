"""Structured logs: JSON lines with the request id; nothing outside the allow-list gets through."""

from __future__ import annotations

import json
import logging

from faceshield.service.logs import JsonFormatter, RequestIdFilter, request_id_var


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
