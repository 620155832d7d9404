"""Shared fixtures: tiny seeded models and images. Everything runs on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshield.engine.models.stargan import Generator
from tests.helpers import ASTRONAUT, tiny_generator


@pytest.fixture(scope="session")
def generator() -> Generator:
    return tiny_generator()


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """The astronaut portrait, 128x128 uint8 (a real face, smooth regions and edges)."""
    root = Path(__file__).resolve().parents[1]
    img = Image.open(root / ASTRONAUT).convert("RGB").resize((128, 128), Image.BILINEAR)
    return np.array(img)
