"""Servers for tests: a real gRPC server on 127.0.0.1, port 0, on its own thread and loop.

The server runs on a background event loop so that tests can use the blocking SDK, raw sync
stubs and the asyncio client alike. Models are tiny and seeded (32x32 generator), so a
protection costs milliseconds.
"""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import torch
from PIL import Image

from faceshield.engine import FaceShieldEngine, ModelSet
from faceshield.engine.pipeline import Limits
from faceshield.service.server import FaceShieldServer, create_server
from faceshield.service.settings import Settings
from tests.helpers import ATTRS, tiny_generator

TEST_RESOLUTION = 32


def tiny_models(resolution: int = TEST_RESOLUTION, conv_dim: int = 4, repeat_num: int = 1) -> ModelSet:
    return ModelSet(
        name="tiny-test",
        version="seed-0",
        generator=tiny_generator(conv_dim=conv_dim, repeat_num=repeat_num),
        attributes=list(ATTRS),
        resolution=resolution,
        trained=False,
        description="tiny seeded test generator",
        hashes={"generator": "0" * 64},
    )


def tiny_engine(settings: Settings | None = None, **model_args) -> FaceShieldEngine:
    s = settings or Settings()
    limits = Limits(max_pixels=s.max_pixels, max_steps=s.max_steps, max_batch=s.max_batch)
    return FaceShieldEngine(tiny_models(**model_args), limits=limits)


def test_settings(**changes) -> Settings:
    base = dict(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        metrics_host="127.0.0.1",
        grace_seconds=5.0,
        drain_seconds=0.0,
        batch_wait_ms=5.0,
    )
    base.update(changes)
    return Settings().replace(**base)


test_settings.__test__ = False  # not a test, despite the name


def random_image(size: int = 32, seed: int = 0, width: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, width or size, 3), dtype=np.uint8)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB")).copy()


class ServerThread:
    """`with ServerThread(settings, engine) as s:` serves on 127.0.0.1:s.port until the block ends."""

    def __init__(self, settings: Settings | None = None, engine=None, wait_ready: bool = True):
        self.settings = settings or test_settings()
        self.engine_source = engine if engine is not None else tiny_engine(self.settings)
        self.wait = wait_ready
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.server: FaceShieldServer | None = None
        self.port = 0

    def call(self, coro, timeout: float = 60.0):
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def engine(self) -> FaceShieldEngine:
        return self.server.engine

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.server.metrics.value(name, labels)

    def __enter__(self) -> ServerThread:
        # One intra-op thread: on a small shared CPU, OpenMP workers spinning against other
        # processes make a millisecond batch take seconds. Restored on exit.
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.thread.start()

        async def start():
            server, port = create_server(self.settings, self.engine_source, "127.0.0.1:0")
            await server.start()
            return server, port

        self.server, self.port = self.call(start())
        if self.wait:
            self.call(self.server.wait_ready(60))
        return self

    def stop(self, grace: float = 0.0) -> None:
        if self.server is not None:
            self.call(self.server.stop(grace))

    def __exit__(self, *exc) -> None:
        try:
            self.stop(0.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            torch.set_num_threads(self._threads)
