"""Fixtures the engine's test files share."""

from __future__ import annotations

import pytest

from faceshield.engine import modelsets as repo


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv(repo.ENV_PATH, str(root))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return root
