"""Container health probe: exit 0 when the local server's health service says SERVING.

    python -m faceshield.service.healthcheck [--port P] [--timeout S]

Reads FACESHIELD_PORT like the server. With TLS on (FACESHIELD_TLS_CERT), it trusts
FACESHIELD_HEALTHCHECK_CA, or the server's own certificate (enough for a self-signed one). The
health service needs no token, so auth settings do not matter here.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=int(os.environ.get("FACESHIELD_PORT") or 50051))
    p.add_argument("--timeout", type=float, default=3.0)
    args = p.parse_args(argv)
    target = f"localhost:{args.port}"
    cert = os.environ.get("FACESHIELD_TLS_CERT")
    if cert:
        with open(os.environ.get("FACESHIELD_HEALTHCHECK_CA") or cert, "rb") as f:
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(target)
    try:
        with channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
    except grpc.RpcError as e:
        print(f"unhealthy: {e.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
