"""grpc.health.v1 wiring: NOT_SERVING until the models are warm, and again while draining.

The stock asyncio servicer keeps `Watch` streams open forever, which would hold a graceful stop
for its whole grace period; `close_watches` ends them once they have seen NOT_SERVING.
"""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServicer(health.aio.HealthServicer):
    def __init__(self, services: list[str]):
        super().__init__()
        self.services = ["", *services]  # "" is the whole server
        for name in self.services:
            self._server_status[name] = NOT_SERVING
        self._closing: asyncio.Event | None = None

    def _closing_event(self) -> asyncio.Event:
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    async def set_all(self, status) -> None:
        for name in self.services:
            await self.set(name, status)

    async def Watch(self, request, context):
        watch = asyncio.ensure_future(super().Watch(request, context))
        closing = asyncio.ensure_future(self._closing_event().wait())
        try:
            await asyncio.wait({watch, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, closing):
                task.cancel()
            await asyncio.gather(watch, closing, return_exceptions=True)

    def close_watches(self) -> None:
        self._closing_event().set()
