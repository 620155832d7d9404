"""The home-made surrogate translator (evaluation only): its shape contract, the weights file's
round trip into a victim, and an attack on it through the engine. The weights here are random
(CelebA-trained ones are never in the repo); what is tested is the plumbing the benchmark uses."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from faceshield.engine import AttackConfig, FaceShieldEngine, ProtectRequest
from faceshield.engine.evaluation import surrogate as sg
from faceshield.engine.modelset import ModelSet


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("surrogate") / "celeba-ae.pt"
    torch.save(sg.FaceTranslator().state_dict(), path)
    return path


def test_translator_keeps_shape_and_range():
    model = sg.FaceTranslator().eval()
    for side in (96, 128):
        x = torch.rand(2, 3, side, side) * 2 - 1
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape
        assert float(y.abs().max()) <= 1.0


def test_victim_round_trip(weights):
    victim = sg.surrogate_victim(weights)
    assert (victim.name, victim.kind, victim.resolution, victim.c_dim) == (sg.NAME, "translator", 128, 0)
    assert victim.targets == [sg.NAME]
    assert victim.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert victim.provenance["evaluation_only"] is True
    assert "non-commercial" in victim.provenance["license"]
    reference = sg.FaceTranslator()
    reference.load_state_dict(torch.load(weights, weights_only=True))
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    torch.testing.assert_close(victim.generator(x, torch.zeros(1, 0)), reference.eval()(x))
    # Frozen weights, but the input gradient the attack needs flows.
    assert not any(p.requires_grad for p in victim.generator.parameters())
    x.requires_grad_(True)
    victim.generator(x, torch.zeros(1, 0)).square().mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_engine_attacks_it_within_epsilon(weights):
    engine = FaceShieldEngine(ModelSet("surrogate", "test", victims=[sg.surrogate_victim(weights)]))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    config = AttackConfig.for_method("pgd", steps=3)
    out = engine.protect([ProtectRequest(image)], config)[0]
    diff = np.abs(out.protected.astype(int) - image.astype(int))
    assert 0 < diff.max() <= np.floor(config.epsilon * 127.5)
    assert [m.victim for m in out.targets] == [sg.NAME]
    assert out.targets[0].mse > 0
