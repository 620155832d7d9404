"""A protect run writes nothing but the caller's output: no telemetry database, no cache, no
temporary file (face images are biometric data; so is anything derived from handling them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
ROOT = Path(__file__).resolve().parents[1]


def sandbox(root: Path) -> tuple[dict[str, str], list[Path]]:
    """An environment whose HOME, XDG_CACHE_HOME and TMPDIR are fresh, empty directories.
    ORT_DISABLE_TELEMETRY is removed: importing faceshield.engine sets it in this process."""
    dirs = [root / "home", root / "cache", root / "tmp", root / "cwd"]
    for d in dirs:
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if k != TELEMETRY_ENV and not k.startswith("XDG_")}
    env.update(HOME=str(dirs[0]), XDG_CACHE_HOME=str(dirs[1]), TMPDIR=str(dirs[2]), OMP_NUM_THREADS="1")
    return env, dirs


def files_under(dirs: list[Path]) -> list[str]:
    return sorted(str(p) for d in dirs for p in d.rglob("*"))


def test_the_check_sees_what_a_child_writes_in_each_place(tmp_path):
    """The sandbox reaches the child and the check sees a file in any of its places, so the test
    below can fail."""
    env, dirs = sandbox(tmp_path)
    code = (
        "import os, tempfile, pathlib\n"
        "tempfile.mkstemp()\n"
        "for var in ('HOME', 'XDG_CACHE_HOME'): pathlib.Path(os.environ[var], 'x').touch()\n"
        "pathlib.Path('x').touch()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=dirs[3], check=True, timeout=60)
    assert [len(list(d.iterdir())) for d in dirs] == [1, 1, 1, 1]


def test_the_check_sees_onnxruntime_telemetry_files(tmp_path):
    """Where this onnxruntime writes telemetry files on import, the check sees them (it did on the
    2-core box, 2026-12-01: a device id and event database under ~/.cache, a .ses file in
    TMPDIR). Some machines write none (CI's did not): there the next test guards the rest."""
    env, dirs = sandbox(tmp_path)
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, cwd=dirs[3], check=True, timeout=120)
    written = files_under(dirs)
    if not written:
        pytest.skip("importing onnxruntime writes no files on this machine")
    assert any("onnxruntime" in f for f in written), written


@pytest.mark.slow  # a protect run in a fresh interpreter
def test_a_protect_run_writes_only_its_output(tmp_path):
    env, dirs = sandbox(tmp_path)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    face = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(face).save(inputs / "face.png")
    # The demo set (a real TRACER through ONNX Runtime) and the default method, end to end; the
    # face detectors (OpenCV's cascades, then dlib) run, find no face in the noise, and the run
    # falls back to the centre square as --no-face centre asks.
    args = ["-m", "faceshield.cli", "protect", str(inputs / "face.png"), "-o", str(outputs / "p.png")]
    args += ["--no-face", "centre"]
    run = subprocess.run(
        [sys.executable, *args, "--steps", "1", "--targets", "Male", "--models", "demo", "--json"],
        env=env,
        cwd=dirs[3],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 3), run.stderr  # 3: written, not protected (no face for the recogniser)
    assert '"saliency_runtime": "onnxruntime"' in run.stdout
    assert files_under(dirs) == []
    assert sorted(p.name for p in outputs.iterdir()) == ["p.png"]
    assert sorted(p.name for p in inputs.iterdir()) == ["face.png"]


@pytest.mark.slow  # the default models built in memory in a fresh interpreter
def test_a_run_with_the_default_models_writes_nothing_it_was_not_asked_for(tmp_path):
    """Nothing prepared in this HOME: the real victims are built in memory from their wheels (the
    styles wheel read from a wheel directory, fetching off) and the identity verdict runs dlib;
    no cache, no model set, no telemetry is left behind."""
    from faceshield.engine.modelsets.wheels import ENV_OFFLINE, ENV_WHEEL_DIR

    wheels = os.environ.get(ENV_WHEEL_DIR)
    if not wheels:
        pytest.skip("no wheel directory of the default victims (make test runs `faceshield models prepare` first)")
    env, dirs = sandbox(tmp_path)
    env.update({ENV_WHEEL_DIR: wheels, ENV_OFFLINE: "1"})
    env.pop("FACESHIELD_MODELS", None)
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    Image.open(ROOT / "assets" / "astronaut.png").convert("RGB").resize((256, 256)).save(inputs / "face.png")
    args = ["-m", "faceshield.cli", "protect", str(inputs / "face.png"), "-o", str(outputs / "p.png")]
    run = subprocess.run(
        [sys.executable, *args, "--steps", "1", "--policy", "fixed", "--json"],
        env=env,
        cwd=dirs[3],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 3), run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert [v["name"] for v in report["victims"]] == ["vintage", "styles"] and report["verdict_rule"] == "identity"
    assert files_under(dirs) == []
    assert sorted(p.name for p in outputs.iterdir()) == ["p.png"]
