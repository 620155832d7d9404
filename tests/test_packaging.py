"""Packaging: every folder of the namespace is declared (setuptools warns at each install about
one that is not) and every data file is matched by package-data, so an install is silent and
ships the demo model set, the stubs' .pyi files and the SDK's py.typed."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folders() -> dict[str, Path]:
    """Dotted name -> folder, for every folder under the package-dir roots."""
    out = {}
    for root_name, rel in CONFIG["package-dir"].items():
        root = ROOT / rel
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts:
                continue
            parts = folder.relative_to(root).parts
            out[".".join([root_name, *parts])] = folder
    return out


def test_every_folder_is_a_declared_package():
    assert sorted(set(_folders()) - set(CONFIG["packages"])) == []
    assert sorted(set(CONFIG["packages"]) - set(_folders())) == []


def test_every_data_file_is_package_data():
    data = CONFIG.get("package-data", {})
    missing = []
    for name, folder in _folders().items():
        for f in folder.iterdir():
            if f.is_file() and f.suffix not in (".py", ".pyc"):
                if not any(fnmatch.fnmatch(f.name, pattern) for pattern in data.get(name, [])):
                    missing.append(str(f.relative_to(ROOT)))
    assert missing == []


@pytest.mark.slow
def test_wheel_builds_silently_and_carries_the_data(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    wheel = next(tmp_path.glob("faceshield-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for path in (
        "faceshield/engine/assets/models/demo/manifest.json",
        "faceshield/engine/assets/models/demo/generator.pt",
        "faceshield/engine/assets/models/demo/saliency.onnx",
        "faceshield/v1/faceshield_pb2.pyi",
        "faceshield/client/py.typed",
    ):
        assert path in names, path


def _docker_pins() -> dict[str, str]:
    """name -> version of every `pip install NAME==VERSION` in the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if "pip install" not in line:
            continue
        for word in line.split("pip install", 1)[1].split():
            if "==" in word:
                name, version = word.split("==", 1)
                pins[canonicalize_name(name)] = version
    return pins


def test_the_image_installs_every_runtime_dependency_within_its_range():
    """The image installs FaceShield with --no-deps after pinning its dependencies: one left out
    is simply missing in production (kornia's robust stage, vintagify's real victim were)."""
    pins = _docker_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"the Dockerfile does not install {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (req.name, pins[name], str(req.specifier))
