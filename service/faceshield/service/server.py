"""The gRPC server: FaceShield, health and reflection on one port; metrics on another.

    server, port = create_server(settings, engine_or_loader, "127.0.0.1:0")
    await server.start()          # listening; health NOT_SERVING until the models are warm
    await server.wait_ready()
    ...
    await server.stop()           # drain: NOT_SERVING, refuse new calls, finish in-flight ones

`serve` runs one until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from faceshield.engine import FaceShieldEngine
from faceshield.v1 import faceshield_pb2 as pb

from . import convert, responses
from .auth import BearerTokenInterceptor
from .batcher import MicroBatcher
from .estimate import CostEstimate, default_image_steps
from .health import NOT_SERVING, SERVING, HealthServicer
from .metrics import ServiceMetrics
from .parsing import add_servicer
from .servicer import Backend, FaceShieldServicer
from .settings import Settings, SettingsError

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceShield"].full_name  # "faceshield.v1.FaceShield"
EngineSource: TypeAlias = FaceShieldEngine | Callable[[], FaceShieldEngine]


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # gRPC sets SO_REUSEPORT by default, so a second server on a port in use would bind
        # silently and share its traffic: refuse instead.
        ("grpc.so_reuseport", 0),
    ]


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    # Called only with TLS on: Settings checks that it then has both a key and a certificate.
    assert settings.tls_key is not None and settings.tls_cert is not None
    try:
        key = settings.tls_key.read_bytes()
        cert = settings.tls_cert.read_bytes()
        ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    except OSError as exc:
        raise SettingsError("tls_cert", f"cannot read {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def _refuse_port_in_use(address: str) -> None:
    """Raise SettingsError when `address`'s port is taken, before gRPC tries it (gRPC's own
    failure is caught too, but only after its C core has logged a line of its own to stderr)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        return  # gRPC reports an unresolvable host itself
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise SettingsError("port", f"cannot listen on {address}: the address is in use") from None


class _Observers:
    """The batcher's observer, fanned out to the metrics and the cost estimate."""

    def __init__(self, *observers):
        self.observers = observers

    def queue_depth(self, depth: int) -> None:
        for o in self.observers:
            o.queue_depth(depth)

    def batch_done(self, size: int, seconds: float) -> None:
        for o in self.observers:
            o.batch_done(size, seconds)

    def item_dropped(self, reason: str) -> None:
        for o in self.observers:
            o.item_dropped(reason)


class FaceShieldServer:
    """One server and everything it owns (engine thread, batcher, health, metrics)."""

    def __init__(self, settings: Settings, engine: EngineSource, address: str | None = None):
        """Bind both ports (metrics serve at once; gRPC from `start`). A port that cannot be had
        raises SettingsError naming it, and leaves nothing bound or running."""
        self.settings = settings
        address = address or settings.address
        _refuse_port_in_use(address)
        credentials = server_credentials(settings) if settings.tls else None
        self.metrics = ServiceMetrics()
        self.metrics_port: int | None = None
        self._bind_metrics()
        self._source = engine
        # One thread for the engine: it serializes on its device anyway, and its batches come
        # from the batcher, which is where the concurrency lives.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceshield-engine")
        self.cost = CostEstimate(lambda: self.backend.engine.counters["image_steps"] if self.backend.engine else 0)
        self.batcher = MicroBatcher(
            self.executor,
            settings.max_batch,
            settings.batch_wait_ms / 1000.0,
            settings.queue_length,
            queue_bytes=settings.queue_bytes,
            observer=_Observers(self.metrics, self.cost),
        )
        self.backend = Backend(settings, self.batcher, self.metrics, cost=self.cost)
        self.metrics.watch_engine(lambda: self.backend.engine.counters if self.backend.engine else {})
        interceptors = [BearerTokenInterceptor(settings.auth_tokens)] if settings.auth_tokens else []
        self.server = grpc.aio.server(interceptors=interceptors, options=channel_options(settings.max_message_bytes))
        add_servicer(FaceShieldServicer(self.backend), self.server, pb.DESCRIPTOR.services_by_name["FaceShield"])
        self.health = HealthServicer([SERVICE_NAME])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self.server,
        )
        try:
            if credentials is not None:
                self.port = self.server.add_secure_port(address, credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            # Drop the unstarted server now, while the event loop runs: grpc.aio schedules its
            # shutdown from __del__, which fails noisily once the loop is closed.
            self.server = None
            self.metrics.close()
            raise SettingsError("port", f"cannot listen on {address}: the address is in use or unavailable") from None
        self.ready = asyncio.Event()
        self._ready_task: asyncio.Task | None = None
        self._stopping: asyncio.Task | None = None

    @property
    def engine(self) -> FaceShieldEngine | None:
        return self.backend.engine

    async def start(self) -> None:
        """Listen at once (health says NOT_SERVING), then load and warm the models."""
        await self.server.start()
        self.batcher.start()
        self._ready_task = asyncio.get_running_loop().create_task(self._become_ready(), name="faceshield-ready")
        log.info("listening", extra={"port": self.port})

    def _bind_metrics(self) -> None:
        wanted = self.settings.metrics_listen_port
        if wanted < 0:
            return
        host = self.settings.metrics_host
        try:
            self.metrics_port = self.metrics.serve(host, wanted)
        except OSError as exc:
            hint = "--metrics-port 0 picks a free port, -1 turns metrics off"
            raise SettingsError("metrics_port", f"cannot listen on {host}:{wanted}: {exc.strerror} ({hint})") from None

    async def _become_ready(self) -> None:
        t0 = time.monotonic()
        source = self._source
        loop = asyncio.get_running_loop()
        engine = source if isinstance(source, FaceShieldEngine) else await loop.run_in_executor(self.executor, source)
        passes = engine.counters["image_steps"]
        if self.settings.warm_up:
            t_warm = time.monotonic()
            await loop.run_in_executor(self.executor, engine.warm_up)
            # The first measurement of seconds per generator pass (pessimistic: it includes
            # lazy initialisation); real batches soon outweigh it.
            self.cost.observe(time.monotonic() - t_warm, engine.counters["image_steps"] - passes)
        self.cost.configure(
            # The method's own schedule; `ensure`'s whole budget (60 of 10 steps, plus the noise
            # generator's 5: 4.3x) stays inside the SDK's 5x margin on this figure.
            default_image_steps(convert.default_config(), len(engine.models.targets)),
            engine.counters["image_steps"],
        )
        self.backend.models = responses.model_versions(engine.info())
        self.backend.engine = engine
        if not self.backend.draining:
            await self.health.set_all(SERVING)
        self.ready.set()
        log.info("serving", extra={"seconds": round(time.monotonic() - t0, 3)})

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once serving; raise what went wrong if loading or warm-up failed."""
        assert self._ready_task is not None, "start() the server first"
        await asyncio.wait_for(asyncio.shield(self._ready_task), timeout)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: NOT_SERVING, refuse new calls, let in-flight ones finish within `grace` seconds."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop(grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float | None) -> None:
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("draining", extra={"seconds": grace})
        self.backend.draining = True
        await self.health.enter_graceful_shutdown()
        if self.settings.drain_seconds:
            await asyncio.sleep(self.settings.drain_seconds)  # let load balancers see NOT_SERVING
        self.health.close_watches()
        await self.server.stop(grace)
        if self._ready_task is not None and not self._ready_task.done():
            self._ready_task.cancel()
        await self.batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.metrics.close()
        log.info("stopped")

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def create_server(settings: Settings, engine: EngineSource, address: str | None = None) -> tuple[FaceShieldServer, int]:
    """Build a server bound to `address` (default: settings'); port 0 picks a free port.

    engine: a loaded engine, or a function that loads one (called on the engine thread after
    the server starts listening, so that health can say NOT_SERVING meanwhile).
    """
    server = FaceShieldServer(settings, engine, address)
    return server, server.port


async def serve(
    settings: Settings,
    engine: EngineSource,
    on_listening: Callable[[FaceShieldServer], None] | None = None,
    on_ready: Callable[[FaceShieldServer, float], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, then drain. Returns a process exit code.

    `on_listening(server)` is called once both ports are bound (health: NOT_SERVING), and
    `on_ready(server, seconds)` once the models are loaded and warm (health: SERVING)."""
    t0 = time.monotonic()
    server, _ = create_server(settings, engine)
    await server.start()
    if on_listening is not None:
        on_listening(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = loop.create_task(stop.wait())
    ready = server._ready_task
    assert ready is not None  # start() created it
    done, _ = await asyncio.wait({stopper, ready}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if ready in done and ready.exception() is not None:
        log.error("the models could not be loaded", exc_info=ready.exception())
        code = 1
    else:
        if ready in done and on_ready is not None:
            on_ready(server, time.monotonic() - t0)
        await stopper
    stopper.cancel()
    await server.stop()
    return code


__all__ = ["NOT_SERVING", "SERVICE_NAME", "SERVING", "FaceShieldServer", "create_server", "serve"]
