"""Settings from env and flags; stubs reproducible from protos/ and packaged as committed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from faceshield.cli.main import build_parser
from faceshield.cli.serve import settings_from
from faceshield.service.errors import Overloaded, to_grpc_status, to_rpc_status
from faceshield.service.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import gen_protos  # noqa: E402


def test_settings_from_env_and_flags(tmp_path, monkeypatch):
    tokens = tmp_path / "tokens"
    tokens.write_text("# comment\nalpha\n\nbeta\n")
    env = {
        "FACESHIELD_PORT": "6000",
        "FACESHIELD_QUEUE_LENGTH": "7",
        "FACESHIELD_QUEUE_BYTES": "1000000",
        "FACESHIELD_BATCH_WAIT_MS": "2.5",
        "FACESHIELD_AUTH_TOKEN_FILE": str(tokens),
        "FACESHIELD_WARM_UP": "false",
        "FACESHIELD_MAX_BATCH": "",
    }
    s = Settings.from_env(env)
    assert (s.port, s.queue_length, s.batch_wait_ms, s.warm_up) == (6000, 7, 2.5, False)
    assert s.queue_bytes == 1_000_000
    assert s.auth_tokens == ("alpha", "beta") and "alpha" not in repr(s)
    assert s.max_batch == Settings().max_batch  # empty variable: default
    for key in list(os.environ):
        if key.startswith("FACESHIELD_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FACESHIELD_QUEUE_LENGTH", "9")
    monkeypatch.setenv("FACESHIELD_PORT", "7000")
    monkeypatch.setenv("FACESHIELD_QUEUE_BYTES", "5000")
    args = build_parser().parse_args(["serve", "--port", "0", "--max-batch", "3", "--no-warm-up", "--queue-bytes", "7"])
    s = settings_from(args)
    assert (s.port, s.queue_length, s.max_batch, s.warm_up) == (0, 9, 3, False)  # flags beat env
    assert s.queue_bytes == 7


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"FACESHIELD_PORT": "http"}, "port"),
        ({"FACESHIELD_QUEUE_LENGTH": "0"}, "queue_length"),
        ({"FACESHIELD_QUEUE_BYTES": "0"}, "queue_bytes"),
        ({"FACESHIELD_TLS_CERT": "/x.pem"}, "tls_cert"),
        ({"FACESHIELD_LOG_FORMAT": "xml"}, "log_format"),
        ({"FACESHIELD_WARM_UP": "maybe"}, "warm_up"),
    ],
)
def test_bad_settings_name_the_field(env, field):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.field == field


def test_overload_status_has_retry_info_and_pushback_only_for_unavailable():
    status = to_rpc_status(Overloaded("busy", retry_after=1.5), "rid")
    assert status.code == 8 and len(status.details) == 2
    assert not any(k == "grpc-retry-pushback-ms" for k, _ in to_grpc_status(status).trailing_metadata)
    internal = to_rpc_status(RuntimeError("secret path /x"), "rid-2")
    assert "secret" not in internal.message and "rid-2" in internal.message


def test_committed_stubs_match_protos():
    assert gen_protos.check() == []


def test_drift_is_detected(tmp_path, monkeypatch):
    """A changed proto makes --check fail (on a copy of protos/, never the real one)."""
    import shutil

    protos = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", protos)
    proto = protos / "faceshield" / "v1" / "faceshield.proto"
    proto.write_text(
        proto.read_text().replace("message GetModelInfoRequest {}", "message GetModelInfoRequest { bool verbose = 1; }")
    )
    monkeypatch.setattr(gen_protos, "PROTOS", protos)
    problems = gen_protos.check()
    assert problems and "faceshield_pb2.py differs" in problems[0]


def test_installed_stubs_are_the_committed_ones():
    from faceshield.v1 import faceshield_pb2, faceshield_pb2_grpc

    for module in (faceshield_pb2, faceshield_pb2_grpc):
        installed = Path(module.__file__).read_bytes()
        assert installed == (ROOT / "clients" / "faceshield" / "v1" / Path(module.__file__).name).read_bytes()


def test_client_wheel_carries_current_stubs_and_no_torch(tmp_path):
    """Build faceshield-client alone; its stubs must equal the committed ones, torch not required."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT / "clients"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0 and "No module named pip" in out.stderr:
        pytest.skip("pip is not available")
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("faceshield_client-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for stub in ("faceshield_pb2.py", "faceshield_pb2_grpc.py", "faceshield_pb2.pyi"):
            assert z.read(f"faceshield/v1/{stub}") == (ROOT / "clients/faceshield/v1" / stub).read_bytes()
        assert "faceshield/client/sync.py" in names and "faceshield/client/aio.py" in names
        assert "faceshield/client/py.typed" in names  # PEP 561: type checkers read the SDK's annotations
        assert not any(n.startswith("faceshield/engine") for n in names)
        meta = next(n for n in names if n.endswith("METADATA"))
        requires = [line for line in z.read(meta).decode().splitlines() if line.startswith("Requires-Dist")]
    assert requires and not any("torch" in r for r in requires)


def test_client_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; import faceshield.client, faceshield.v1.faceshield_pb2_grpc;"
        "assert 'faceshield.engine' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_declared_floors_fit_the_stubs():
    """Both packages must require at least the grpcio / protobuf the committed stubs demand."""
    import re
    import tomllib

    grpc_stub = (ROOT / "clients/faceshield/v1/faceshield_pb2_grpc.py").read_text()
    pb_stub = (ROOT / "clients/faceshield/v1/faceshield_pb2.py").read_text()
    need_grpc = tuple(int(v) for v in re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_stub)[1].split("."))
    need_pb = tuple(int(v) for v in re.search(r"Protobuf Python Version: ([\d.]+)", pb_stub)[1].split("."))
    for project in ("pyproject.toml", "clients/pyproject.toml"):
        deps = tomllib.loads((ROOT / project).read_text())["project"]["dependencies"]
        floors = {
            m[1]: tuple(int(v) for v in m[2].split(".")) for d in deps if (m := re.match(r"([a-z-]+)>=([\d.]+)", d))
        }
        assert floors["grpcio"] >= need_grpc, project
        assert floors["protobuf"] >= need_pb, project
