"""Server settings: one typed, frozen object, read from FACESHIELD_* variables and then flags.

    settings = Settings.from_env().replace(port=0, queue_length=4)

Every field has a named default below; `Settings.ENV` maps fields to variables. Invalid values
raise `SettingsError` naming the field, so `faceshield serve` exits with a message, not a trace.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from faceshield.engine.config import DEFAULT_MAX_STEPS
from faceshield.engine.errors import FaceShieldError
from faceshield.engine.io.images import DEFAULT_MAX_PIXELS

DEFAULT_HOST = "[::]"
DEFAULT_PORT = 50051
DEFAULT_METRICS_PORT = 9464  # Prometheus exporters' customary range; -1 turns it off
# Metrics have no authentication: loopback unless the operator opens them (--metrics-host).
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a 40 MP PNG with room to spare
DEFAULT_MAX_BATCH = 16
DEFAULT_BATCH_WAIT_MS = 5.0  # the longest a lone request waits for company
DEFAULT_QUEUE_LENGTH = 64
DEFAULT_QUEUE_BYTES = 1 << 30  # decoded bytes waiting: 1 GiB, about 9 images of 40 MP (64 would be 7.7 GB)
DEFAULT_STREAM_WINDOW = 16
DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_DRAIN_SECONDS = 1.0  # NOT_SERVING (and UNAVAILABLE to new calls) before the listener closes


class SettingsError(FaceShieldError):
    """A setting (variable or flag) is unusable; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"setting {field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # None: DEFAULT_METRICS_PORT, or any free port when `port` is 0 (so that a second server
    # started with port 0 does not collide on a fixed metrics port); 0: any free port; -1: off.
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_steps: int = DEFAULT_MAX_STEPS
    max_batch: int = DEFAULT_MAX_BATCH
    batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS
    queue_length: int = DEFAULT_QUEUE_LENGTH
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    stream_window: int = DEFAULT_STREAM_WINDOW
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    warm_up: bool = True
    # What a request that sets no policy gets (GetModelInfo.defaults.policy): verified protection.
    policy: str = "ensure"
    budget_steps: int = 60
    margin: float = 0.2
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: mutual TLS, clients must present a certificate
    auth_tokens: tuple[str, ...] = field(default=(), repr=False)  # empty: no auth
    log_format: str = "json"  # json | text
    log_level: str = "INFO"

    ENV = {
        "host": "FACESHIELD_HOST",
        "port": "FACESHIELD_PORT",
        "metrics_port": "FACESHIELD_METRICS_PORT",
        "metrics_host": "FACESHIELD_METRICS_HOST",
        "max_message_bytes": "FACESHIELD_MAX_MESSAGE_BYTES",
        "max_pixels": "FACESHIELD_MAX_PIXELS",
        "max_steps": "FACESHIELD_MAX_STEPS",
        "max_batch": "FACESHIELD_MAX_BATCH",
        "batch_wait_ms": "FACESHIELD_BATCH_WAIT_MS",
        "queue_length": "FACESHIELD_QUEUE_LENGTH",
        "queue_bytes": "FACESHIELD_QUEUE_BYTES",
        "stream_window": "FACESHIELD_STREAM_WINDOW",
        "grace_seconds": "FACESHIELD_GRACE_SECONDS",
        "drain_seconds": "FACESHIELD_DRAIN_SECONDS",
        "warm_up": "FACESHIELD_WARM_UP",
        "policy": "FACESHIELD_POLICY",
        "budget_steps": "FACESHIELD_BUDGET_STEPS",
        "margin": "FACESHIELD_MARGIN",
        "tls_cert": "FACESHIELD_TLS_CERT",
        "tls_key": "FACESHIELD_TLS_KEY",
        "tls_client_ca": "FACESHIELD_TLS_CLIENT_CA",
        "auth_tokens": "FACESHIELD_AUTH_TOKENS",  # comma-separated
        "log_format": "FACESHIELD_LOG_FORMAT",
        "log_level": "FACESHIELD_LOG_LEVEL",
    }
    AUTH_TOKEN_FILE_ENV = "FACESHIELD_AUTH_TOKEN_FILE"  # one token a line

    def __post_init__(self) -> None:
        _at_least("port", self.port, 0)
        if self.metrics_port is not None:
            _at_least("metrics_port", self.metrics_port, -1)
        if not self.metrics_host.strip():
            raise SettingsError("metrics_host", "must name an address, e.g. 127.0.0.1 or 0.0.0.0")
        _at_least("max_message_bytes", self.max_message_bytes, 1024)
        _at_least("max_pixels", self.max_pixels, 16 * 16)
        _at_least("max_steps", self.max_steps, 1)
        _at_least("max_batch", self.max_batch, 1)
        _at_least("batch_wait_ms", self.batch_wait_ms, 0)
        _at_least("queue_length", self.queue_length, 1)
        _at_least("queue_bytes", self.queue_bytes, 1)
        _at_least("stream_window", self.stream_window, 1)
        _at_least("grace_seconds", self.grace_seconds, 0)
        _at_least("drain_seconds", self.drain_seconds, 0)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("tls_cert", "TLS needs both a certificate and its key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError("tls_client_ca", "mutual TLS needs the server's own certificate and key too")
        if self.policy not in ("ensure", "fixed"):
            raise SettingsError("policy", f"expected ensure or fixed, got {self.policy!r}")
        _at_least("budget_steps", self.budget_steps, 1)
        if not 0 <= self.margin <= 10:
            raise SettingsError("margin", f"must lie in [0, 10], got {self.margin}")
        if self.log_format not in ("json", "text"):
            raise SettingsError("log_format", f"expected json or text, got {self.log_format!r}")
        if any(not t or any(c.isspace() for c in t) for t in self.auth_tokens):
            raise SettingsError("auth_tokens", "tokens must be non-empty and hold no whitespace")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_listen_port(self) -> int:
        """The metrics port to bind: -1 off, 0 any free one (also what port 0 implies)."""
        if self.metrics_port is not None:
            return self.metrics_port
        return 0 if self.port == 0 else DEFAULT_METRICS_PORT

    def replace(self, **changes) -> Settings:
        """A copy with `changes`; None values are ignored (unset flags)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SettingsError(sorted(unknown)[0], "no such setting")
        return dataclasses.replace(self, **{k: _coerce(self, k, v) for k, v in changes.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, str | tuple[str, ...]] = {
            name: env[var] for name, var in cls.ENV.items() if env.get(var, "") != ""
        }
        token_file = env.get(cls.AUTH_TOKEN_FILE_ENV)
        if token_file:
            values["auth_tokens"] = read_token_file(token_file)
        return cls().replace(**values)


def read_token_file(path: str | Path) -> tuple[str, ...]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SettingsError("auth_tokens", f"cannot read token file {path}: {exc.strerror}") from None
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _coerce(settings: Settings, name: str, value):
    """Strings from the environment or flags -> the field's type."""
    kind = int if name == "metrics_port" else type(getattr(settings, name))
    if name in ("tls_cert", "tls_key", "tls_client_ca"):
        return Path(value)
    if name == "auth_tokens":
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return tuple(value)
    if not isinstance(value, str):
        return value
    try:
        if kind is bool:
            low = value.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            return low in ("1", "true", "yes", "on")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise SettingsError(name, f"expected {kind.__name__}, got {value!r}") from None
    return value


def _at_least(name: str, value, low) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise SettingsError(name, f"must be a number >= {low}, got {value!r}")
