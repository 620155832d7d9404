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


def test_eager_twin_of_a_torchscript_style_network_and_of_the_published_one():
    """`--compile` with the default models needs the styles victim's eager twin (it used to be
    taken for a StarGAN and refused); a network traced with another eps is refused, not compiled wrong."""
    from faceshield.engine.errors import ModelLoadError
    from faceshield.engine.models.styles import StyleNetwork, StyleVictim
    from faceshield.engine.models.torchscript import trace_generator

    torch.manual_seed(0)
    net = StyleNetwork(num_styles=4, contract=(4, 6, 8), residual_blocks=2, expand=(6, 5)).eval()
    for name, p in net.named_parameters():
        if name.endswith("gamma"):
            p.data = 1 + 0.3 * torch.randn_like(p)
    scripted = trace_generator(StyleVictim(net).eval(), 16, 4)
    twin = eager_generator(scripted)
    assert isinstance(twin, StyleVictim) and twin.network.config == net.config
    x = (torch.rand(2, 3, 24, 24) * 2 - 1).requires_grad_(True)
    c = torch.eye(4)[[1, 3]]
    for a, b in zip(value_and_grad(twin, x, c), value_and_grad(scripted, x, c), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)

    other = StyleNetwork(num_styles=4, contract=(4, 6, 8), residual_blocks=2, expand=(6, 5), eps=1e-1).eval()
    other.load_state_dict(net.state_dict())
    with pytest.raises(ModelLoadError, match="eager twin differs"):
        eager_generator(trace_generator(StyleVictim(other).eval(), 16, 4))

    from faceshield.engine.modelsets.published import STYLES, published_victim

    published = published_victim(STYLES)
    if published is None:
        pytest.skip("the styles victim is not prepared (faceshield models prepare)")
    twin = eager_generator(published.generator)
    assert isinstance(twin, StyleVictim) and twin.network.config["contract"] == (32, 32, 32)
    x, c = torch.rand(1, 3, 64, 64) * 2 - 1, torch.eye(26)[[5]]
    with torch.no_grad():
        torch.testing.assert_close(twin(x, c), published.generator(x, c), atol=1e-5, rtol=0)
