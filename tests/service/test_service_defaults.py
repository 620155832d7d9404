"""The service as deployed: its default models (the published real victims), method (identity)
and verdict rule, answering the sample portrait over a real gRPC channel on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceshield.client import FaceShieldClient
from faceshield.engine import FaceShieldEngine
from faceshield.engine.modelsets.defaults import build_default_models
from faceshield.engine.pipeline import Limits
from tests.service.servers import ServerThread, test_settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    settings = test_settings(warm_up=False)
    limits = Limits(max_pixels=settings.max_pixels, max_steps=settings.max_steps, max_batch=settings.max_batch)
    engine = FaceShieldEngine(build_default_models(), limits=limits, verdict="identity")  # as `faceshield serve`
    with ServerThread(settings, engine) as s:
        yield s


def test_model_info_names_the_real_victims_with_their_provenance(server):
    with FaceShieldClient(server.target) as client:
        info = client.model_info()
    assert [v["name"] for v in info.victims] == ["vintage", "styles"]
    assert info.defaults["method"] == "identity" and info.defaults["policy"]["kind"] == "ensure"
    styles = info.victims[1]
    assert len(styles["targets"]) == 26 and styles["default_targets"] == ["00", "05", "12", "14", "23"]
    for v in info.victims:
        assert v["provenance"]["license"] == "MIT" and v["provenance"]["trained_by"] and v["provenance"]["path"]


def test_the_sample_is_protected_by_default_and_every_deepfake_fails_a_face_check(server):
    original = (ROOT / "assets" / "astronaut.png").read_bytes()
    with FaceShieldClient(server.target) as client:
        result = client.protect(original, detect_faces=True, timeout=600)
        v = result.verdict
        assert v.rule == "identity" and v.protected, v.problems
        assert v.faces_kept and all(d is not None and d < 0.3 for d in v.faces_kept)  # the photo still its owner
        assert {e.state for e in v.identity} <= {"broken", "no identity to break"} and len(v.identity) == 6
        # Evaluate judges a protected image the same way: the same faces, edits and distances.
        again = client.evaluate(original, result.png, face_box=list(result.faces), timeout=600).verdict
    assert again.rule == "identity" and again.protected
    assert [round(e.protected_distance, 3) for e in again.identity] == [
        round(e.protected_distance, 3) for e in v.identity
    ]


def test_a_style_that_does_not_exist_is_refused_naming_the_field(server):
    from faceshield.client import InvalidArgumentError

    with FaceShieldClient(server.target) as client, pytest.raises(InvalidArgumentError) as err:
        client.protect((ROOT / "assets" / "astronaut.png").read_bytes(), targets=["styles/99"], timeout=60)
    assert "targets" in str(err.value) and "styles/99" in str(err.value)
