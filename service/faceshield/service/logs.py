"""Structured logs: one JSON object per line, with the request id of the call being handled.

Only the fields named in `FIELDS` leave a record's `extra`, so a careless `extra={"image": ...}`
can never put image bytes in the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("faceshield_request_id", default="")

# Allowed `extra` keys: identifiers, sizes, codes, times. Never image data.
FIELDS = (
    "rpc",
    "code",
    "seconds",
    "peer",
    "batch_size",
    "queue_seconds",
    "items",
    "width",
    "height",
    "method",
    "port",
    "reason",
)


MAX_LOGGED_REQUEST_ID = 128  # characters of a request id that reach a log line


def loggable_request_id(rid: str) -> str:
    """`rid` as a log line may hold it: characters that are not printable escaped (a newline
    becomes `\\n`, ESC `\\x1b`), so that a caller cannot start forged lines or send terminal
    sequences through a text log, and at most MAX_LOGGED_REQUEST_ID characters, cut with a
    marker, so that a 1 MB id does not make a 1 MB line."""
    out: list[str] = []
    used = 0
    for n, c in enumerate(rid):
        piece = c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        if used + len(piece) > MAX_LOGGED_REQUEST_ID:
            return "".join(out) + f"...[{len(rid) - n} more characters]"
        out.append(piece)
        used += len(piece)
    return "".join(out)


class RequestIdFilter(logging.Filter):
    """Puts the request id of the call being handled on every record, in its loggable form."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = loggable_request_id(getattr(record, "request_id", "") or request_id_var.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            out["request_id"] = rid
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


def make_handler(fmt: str = "json", stream=None) -> logging.Handler:
    """A handler writing to `stream` (default stderr) in `fmt` (json or text), request ids on."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    return handler


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Route every log record to stderr in `fmt` (json or text)."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(fmt)]
    root.setLevel(level.upper())
