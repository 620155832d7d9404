"""torch.compile for the generator: the eager twin of a TorchScript artifact, the engine option,
and the compiled generator computing what the eager one does (values and input gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceshield.engine import modelsets as repo
from faceshield.engine.compilation import COMPILE_MODES, compile_generator, eager_generator
from faceshield.engine.config import AttackConfig
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.models.stargan import Generator
from faceshield.engine.models.torchscript import load_generator_artifact
from faceshield.engine.modelset import ModelSet
from faceshield.engine.pipeline import FaceShieldEngine, ProtectRequest
from tests.helpers import ATTRS, tiny_generator


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1).requires_grad_(True), torch.eye(5)[:2]


def value_and_grad(gen, x, c):
    y = gen(x, c)
    (dx,) = torch.autograd.grad(y.pow(2).sum(), x)
    return y.detach(), dx


def test_eager_twin_of_a_torchscript_generator_has_its_weights_and_outputs():
    eager = tiny_generator()
    scripted, _ = load_generator_artifact(repo.export_generator(eager, 32, ATTRS)[0])
    twin = eager_generator(scripted)
    assert isinstance(twin, Generator) and not isinstance(twin, torch.jit.ScriptModule)
    for k, v in scripted.state_dict().items():
        assert torch.equal(twin.state_dict()[k], v), k
    x, c = inputs()
    for a, b in zip(value_and_grad(twin, x, c), value_and_grad(scripted, x, c), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert eager_generator(eager) is eager  # eager modules pass through


def test_modes_are_checked_and_none_changes_nothing():
    g = tiny_generator()
    assert compile_generator(g, "none") is g
    with pytest.raises(InvalidInputError, match="unknown compile mode"):
        compile_generator(g, "fast")
    assert COMPILE_MODES[0] == "none"
    with pytest.raises(InvalidInputError, match="unknown compile mode"):
        FaceShieldEngine(ModelSet("t", "0", g, list(ATTRS), 32), compile="turbo")


@pytest.mark.slow
def test_compiled_engine_computes_what_the_eager_one_does():
    """Inductor on this CPU (one compilation: ~30 s on 2 cores)."""
    scripted, _ = load_generator_artifact(repo.export_generator(tiny_generator(), 32, ATTRS)[0])
    compiled = FaceShieldEngine(ModelSet("t", "0", scripted, list(ATTRS), 32), compile="default")
    assert compiled.info().compile == "default"
    x, c = inputs(1)
    for a, b in zip(
        value_and_grad(compiled.protector.victims[0].generator, x, c), value_and_grad(scripted, x, c), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    [out] = compiled.protect([ProtectRequest(image, targets=["Male"], seed=0)], AttackConfig.for_method("pgd", steps=2))
    assert out.protected.shape == image.shape
    assert np.abs(out.protected.astype(int) - image).max() <= 6  # inside epsilon: 0.05 * 127.5 levels
