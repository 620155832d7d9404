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
    sets, the vintagify victim built on first use) is a fresh folder for the session."""
    os.environ["XDG_DATA_HOME"] = config._faceshield_data = tempfile.mkdtemp(prefix="faceshield-test-data-")


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
