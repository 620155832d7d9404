"""Ports: port 0 means free ports for gRPC and metrics alike, metrics stay on loopback unless
opened, and a port in use is a one-line error (exit 2) that leaves nothing running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from faceshield.client import FaceShieldClient
from faceshield.service.server import create_server
from faceshield.service.settings import DEFAULT_METRICS_PORT, Settings, SettingsError
from tests.service.servers import ServerThread, test_settings, tiny_engine

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_port_follows_the_grpc_port_and_stays_on_loopback():
    assert Settings().metrics_listen_port == DEFAULT_METRICS_PORT
    assert Settings(port=0).metrics_listen_port == 0  # a free port, not the fixed 9464
    assert Settings(port=0, metrics_port=9999).metrics_listen_port == 9999
    assert Settings(port=0, metrics_port=-1).metrics_listen_port == -1
    assert Settings().metrics_host == "127.0.0.1"
    env = Settings.from_env({"FACESHIELD_METRICS_HOST": "0.0.0.0", "FACESHIELD_METRICS_PORT": "-1"})
    assert (env.metrics_host, env.metrics_listen_port) == ("0.0.0.0", -1)
    with pytest.raises(SettingsError, match="metrics_port"):
        Settings(metrics_port=-2)


def test_two_in_process_servers_on_port_zero_get_their_own_ports():
    # The tests' settings name 127.0.0.1 and metrics port 0 explicitly; the defaults are what
    # `serve --port 0` gets, so use them here.
    settings = Settings(host="127.0.0.1", port=0, drain_seconds=0.0)
    with ServerThread(settings) as a, ServerThread(settings) as b:
        assert a.port != b.port and a.server.metrics_port != b.server.metrics_port
        for s in (a, b):
            assert s.server.metrics._http.server_address[0] == "127.0.0.1"
            with urllib.request.urlopen(f"http://127.0.0.1:{s.server.metrics_port}/metrics", timeout=5) as r:
                assert b"faceshield_requests_total" in r.read()


def test_a_port_in_use_is_a_settings_error_and_leaves_nothing_bound():
    with ServerThread() as running:
        with pytest.raises(SettingsError, match="port: cannot listen on 127.0.0.1:"):
            create_server(test_settings(), tiny_engine(), f"127.0.0.1:{running.port}")

        with socket.socket() as spare:  # a port known to be free a moment ago
            spare.bind(("127.0.0.1", 0))
            free = spare.getsockname()[1]
        taken = test_settings(metrics_port=running.server.metrics_port)
        with pytest.raises(SettingsError, match="metrics_port: cannot listen"):
            create_server(taken, tiny_engine(), f"127.0.0.1:{free}")
        with socket.socket() as probe:  # the refused server did not keep its gRPC port
            probe.bind(("127.0.0.1", free))


# -- the command, as a user runs it ------------------------------------------------------------
def _serve(*extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "faceshield.cli", "serve", "--host", "127.0.0.1", "--no-saliency"]
    return subprocess.Popen(
        [*argv, "--log-format", "text", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _refused(*extra: str) -> str:
    proc = _serve(*extra)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert out == "" and "Traceback" not in err and "Event loop" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.slow
def test_two_servers_on_port_zero_side_by_side_and_a_port_in_use():
    first, second = _serve("--port", "0"), _serve("--port", "0")
    try:
        ports = []
        for proc in (first, second):
            listening = proc.stdout.readline().split()
            assert listening[:4] == ["faceshield", "listening", "on", "port"], listening
            ports.append((int(listening[4]), int(listening[6])))
        assert len({p for pair in ports for p in pair}) == 4, ports  # four distinct ports
        for proc, (port, _) in zip((first, second), ports, strict=True):
            ready = proc.stdout.readline()
            assert ready.startswith(f"faceshield ready on port {port} ("), ready
            with FaceShieldClient(f"127.0.0.1:{port}") as client:
                assert client.health() == health_pb2.HealthCheckResponse.ServingStatus.Name(1)  # SERVING

        (port, metrics) = ports[0]
        line = _refused("--port", str(port))
        assert line == f"faceshield: error: setting port: cannot listen on 127.0.0.1:{port}: the address is in use"
        line = _refused("--port", "0", "--metrics-port", str(metrics))
        assert line.startswith(f"faceshield: error: setting metrics_port: cannot listen on 127.0.0.1:{metrics}: ")
        with FaceShieldClient(f"127.0.0.1:{port}") as client:  # the first server was not disturbed
            assert client.health() == "SERVING"
    finally:
        for proc in (first, second):
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in (first, second)]
        for proc in (first, second):
            proc.stdout.close()
            proc.stderr.close()
    assert codes == [0, 0]
