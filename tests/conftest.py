"""Shared fixtures: tiny seeded models and images. Everything runs on CPU."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshield.engine.models.stargan import Generator
from tests.helpers import ASTRONAUT, tiny_generator


def pytest_configure(config):
    """Tests never write into the user's home: FaceShield's data directory (installed model
    sets, the victims built on first use) is a fresh folder for the session.

    Tests never download either: the wheels of the published victims come from the cache that
    `faceshield models prepare` filled (`make test` runs it first), named as the wheel directory,
    and fetching is off."""
    from faceshield.engine.modelsets.store import data_home
    from faceshield.engine.modelsets.wheels import ENV_OFFLINE, ENV_WHEEL_DIR

    cache, prepared = data_home() / "wheels", data_home() / "models"
    if cache.is_dir() and not os.environ.get(ENV_WHEEL_DIR):
        os.environ[ENV_WHEEL_DIR] = str(cache)
    os.environ[ENV_OFFLINE] = "1"
    os.environ["XDG_DATA_HOME"] = config._faceshield_data = tempfile.mkdtemp(prefix="faceshield-test-data-")
    # The sets `faceshield models prepare` built are read (never written: writes go to the
    # session's own folder, the first search path), so tests do not rebuild the real victims.
    if prepared.is_dir() and not os.environ.get("FACESHIELD_MODELS"):
        ours = Path(config._faceshield_data) / "faceshield" / "models"
        os.environ["FACESHIELD_MODELS"] = f"{ours}{os.pathsep}{prepared}"


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_faceshield_data", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def generator() -> Generator:
    return tiny_generator()


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """The astronaut portrait, 128x128 uint8 (a real face, smooth regions and edges)."""
    root = Path(__file__).resolve().parents[1]
    img = Image.open(root / ASTRONAUT).convert("RGB").resize((128, 128), Image.BILINEAR)
    return np.array(img)
