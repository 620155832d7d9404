"""Bearer-token auth and TLS / mutual TLS, over real channels (certificates made here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from faceshield.client import FaceShieldClient, UnauthenticatedError, UnavailableError
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.service.servers import ServerThread, random_image, test_settings

TOKEN = "s3cret-token"
# Noise has no face; these calls are about the channel, not face finding: the centre square.
FAST = {"method": "pgd", "steps": 1, "targets": ["Male"], "detect_faces": False}


def test_auth_required():
    with ServerThread(test_settings(auth_tokens=(TOKEN, "second-token"), metrics_port=-1)) as s:
        with grpc.insecure_channel(s.target) as channel:
            stub = pb_grpc.FaceShieldStub(channel)
            for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
                with pytest.raises(grpc.RpcError) as caught:
                    stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10, metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # Streams are guarded too.
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.ProtectStream(iter([pb.ProtectImageRequest()]), timeout=10))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            info = stub.GetModelInfo(
                pb.GetModelInfoRequest(), timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),)
            )
            assert info.resolution == 32
            # Probes need no secret.
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        with FaceShieldClient(s.target) as anonymous, pytest.raises(UnauthenticatedError):
            anonymous.model_info()
        with FaceShieldClient(s.target, token="second-token") as client:
            assert client.protect(random_image(32), **FAST).width == 32


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=faceshield-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    for name, usage, san in (
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "clientAuth", "subjectAltName=DNS:test-client"),
    ):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"{san}\nextendedKeyUsage={usage}\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


def test_tls_round_trip(certificates):
    d = certificates
    settings = test_settings(tls_cert=d / "server.crt", tls_key=d / "server.key", metrics_port=-1)
    with ServerThread(settings) as s:
        with FaceShieldClient(s.target, root_certificates=d / "ca.crt") as client:
            assert client.model_info().resolution == 32
            assert client.protect(random_image(32), **FAST).width == 32
        # Plaintext against a TLS port fails.
        with FaceShieldClient(s.target, timeout=1, retry=None) as plain, pytest.raises(UnavailableError):
            plain.model_info()


def test_mutual_tls(certificates):
    d = certificates
    settings = test_settings(
        tls_cert=d / "server.crt",
        tls_key=d / "server.key",
        tls_client_ca=d / "ca.crt",
        metrics_port=-1,
        auth_tokens=(TOKEN,),
    )
    with ServerThread(settings) as s:
        with FaceShieldClient(
            s.target,
            root_certificates=d / "ca.crt",
            certificate_chain=d / "client.crt",
            private_key=d / "client.key",
            token=TOKEN,
        ) as client:
            assert client.model_info().resolution == 32
        with (
            FaceShieldClient(s.target, root_certificates=d / "ca.crt", token=TOKEN, timeout=1, retry=None) as no_cert,
            pytest.raises(UnavailableError),
        ):
            no_cert.model_info()
