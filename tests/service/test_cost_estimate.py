"""GetModelInfo's expected_seconds_per_image: generator passes counted as the engine counts them,
seconds per pass from the warm-up and then recent batches."""

from __future__ import annotations

import numpy as np
import pytest

from faceshield.client import FaceShieldClient
from faceshield.engine import AttackConfig, ProtectRequest
from faceshield.engine.config import PRODUCT_METHOD
from faceshield.service.estimate import CostEstimate, default_image_steps
from tests.service.servers import ServerThread, random_image, test_settings, tiny_engine

IMAGE = random_image(32, seed=3)


@pytest.fixture(scope="module")
def server():
    with ServerThread(test_settings(metrics_port=-1)) as s:
        yield s


def test_generator_passes_per_image_match_the_engines_count():
    engine = tiny_engine()
    mask = np.full((32, 32), 0.5, np.float32)
    for method in ("union-saliency", "pgd", "eot-blur"):
        config = AttackConfig.for_method(method, steps=2, noise_steps=3)
        before = engine.counters["image_steps"]
        engine.protect([ProtectRequest(IMAGE, targets=["Male", "Young"], saliency_mask=mask)], config)
        assert engine.counters["image_steps"] - before == default_image_steps(config, 2), method


def test_estimate_is_seconds_per_pass_over_recent_batches():
    count = {"passes": 0}
    cost = CostEstimate(lambda: count["passes"], window=2)
    assert cost.seconds_per_image() == 0.0  # nothing measured: the SDK falls back to its fixed default
    cost.configure(75, 0)
    cost.observe(1.0, 2)  # the warm-up: 0.5 s per pass
    assert cost.seconds_per_image() == pytest.approx(37.5)
    count["passes"] = 150
    cost.batch_done(2, 3.0)  # 150 passes in 3 s
    count["passes"] = 300
    cost.batch_done(2, 3.0)  # the window (2) now holds two real batches only: 0.02 s per pass
    assert cost.seconds_per_image() == pytest.approx(75 * 6.0 / 300)


def test_server_reports_its_measured_seconds_per_image(server):
    with FaceShieldClient(server.target) as client:
        warm = client.model_info().expected_seconds_per_image
        assert warm > 0  # from the warm-up
        # Noise has no face: the centre square, asked for (the detector would refuse it).
        client.protect(IMAGE, method="pgd", steps=3, targets=["Male"], detect_faces=False, timeout=60)
        after = client.model_info().expected_seconds_per_image
    passes = server.server.cost
    assert after == pytest.approx(passes.seconds_per_image()) and after != warm
    assert passes.image_steps == default_image_steps(AttackConfig.for_method(PRODUCT_METHOD), 5)
