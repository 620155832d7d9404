"""The feature-level objective (attack/features.py): it cuts each known victim where its residual
blocks begin, eager or TorchScript; it is zero on the clean photo; in a protection it raises the
encoder's distortion, stays within epsilon, and leaves a victim it does not know untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceshield.engine import AttackConfig, Protector
from faceshield.engine.attack.features import FeatureTerm, encoder_of
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.models.styles import StyleNetwork, StyleVictim
from faceshield.engine.models.torchscript import (
    generator_to_bytes,
    load_generator_artifact,
    trace_generator,
    trace_translator,
)
from faceshield.engine.models.translator import RESNET_CONTRACT_LAYERS, TranslatorSpec, build_translator
from faceshield.engine.models.victims import Unconditional, Victim
from tests.helpers import ATTRS, tiny_generator

R = 32


def resnet(seed: int = 1) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_translator(TranslatorSpec("resnet", ngf=4, blocks=2, norm="instance-affine"))
        for p in model.parameters():
            p.data.add_(torch.randn_like(p) * 0.3)
    return model.eval().requires_grad_(False)


def styles(seed: int = 2) -> StyleVictim:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = StyleNetwork(num_styles=3, contract=(4, 6, 8), residual_blocks=2, expand=(6, 5))
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.data = 1 + 0.3 * torch.randn_like(p)
    return StyleVictim(net.eval()).requires_grad_(False)


def rest_of_translator(model, h):
    for layer in list(model.model.children())[RESNET_CONTRACT_LAYERS:]:
        h = layer(h)
    return h


def rest_of_styles(victim, h, c):
    net = victim.network
    for block in net.res.children():
        first, second = block.children()
        h = h + second(F.relu(first(h, c)), c)
    expand = list(net.expand.children())
    for i, layer in enumerate(expand):
        h = layer(h, c)
        h = torch.sigmoid(h) if i == len(expand) - 1 else F.relu(h)
    return h * 2 - 1


def loaded(traced):
    """A trace as the engine holds it: saved as an artifact and loaded back."""
    return load_generator_artifact(generator_to_bytes(traced, {}))[0]


@pytest.mark.parametrize("traced", [False, True])
def test_the_encoder_is_the_contracting_path_of_each_known_victim(traced):
    x = torch.rand(2, 3, R, R) * 2 - 1
    t = resnet()
    g = Unconditional(loaded(trace_translator(t, R)) if traced else t)
    phi = encoder_of(g)(x, torch.zeros(2, 0))
    assert phi.shape == (2, 16, R // 4, R // 4)  # ngf 4 -> 8 -> 16 channels, two stride-2 convs
    torch.testing.assert_close(rest_of_translator(t, phi), g(x, torch.zeros(2, 0)))

    s = styles()
    c = torch.eye(3)[[0, 2]]
    sg = loaded(trace_generator(s, R, 3)) if traced else s
    phi = encoder_of(sg)(x, c)
    assert phi.shape == (2, 8, R // 4, R // 4)
    torch.testing.assert_close(rest_of_styles(s, phi, c), sg(x, c), atol=1e-5, rtol=1e-4)


def test_unknown_layouts_get_no_feature_term():
    assert encoder_of(tiny_generator()) is None  # StarGAN
    unet = build_translator(TranslatorSpec("unet", ngf=4, blocks=5, norm="instance-affine"))
    assert encoder_of(Unconditional(unet)) is None
    assert encoder_of(Unconditional(trace_translator(resnet(), R))) is None  # a trace never saved: layers not callable
    victims = [
        Victim("stargan", "stargan", tiny_generator(), R, list(ATTRS)),
        Victim("t", "translator", Unconditional(resnet()), R),
    ]
    term = FeatureTerm(victims, 1.0)
    assert "t" in term and "stargan" not in term


def test_the_term_is_zero_on_the_clean_photo_and_linear_in_its_weight():
    v = Victim("s", "styles", styles(), R, ["a", "b", "c"])
    clean = torch.rand(2, 3, R, R) * 2 - 1
    labels = torch.eye(3)[None].expand(2, 3, 3)
    one, four = FeatureTerm([v], 1.0), FeatureTerm([v], 4.0)
    assert one.terms("s", clean, clean, labels).abs().max() == 0
    moved = clean + 0.05 * torch.randn_like(clean)
    a, b = one.terms("s", moved, clean, labels), four.terms("s", moved, clean, labels)
    assert a.shape == (2,) and (a > 0).all()
    torch.testing.assert_close(b, 4 * a)


def test_a_protection_with_the_term_moves_the_encoder_further_within_epsilon():
    v = Victim("t", "translator", Unconditional(resnet()), R)
    p = Protector([v])
    x = torch.rand(1, 3, R, R) * 2 - 1  # the victim's own size: its crop is the image itself
    labels = {"t": torch.zeros(1, 1, 0)}
    plain = AttackConfig.for_method("pgd", steps=8, seed=3)
    with_term = plain.replace(feature_weight=50.0)
    a, b = p.protect(x, labels, plain), p.protect(x, labels, with_term)
    assert (b.protected[0] - x[0]).abs().max() <= with_term.epsilon + 1e-6
    measure = FeatureTerm([v], 1.0)
    moved_plain = float(measure.terms("t", a.protected[0][None], x, labels["t"]))
    moved_term = float(measure.terms("t", b.protected[0][None], x, labels["t"]))
    assert moved_term > 1.2 * moved_plain, (moved_plain, moved_term)


def test_a_victim_without_a_known_encoder_is_protected_as_before():
    g = tiny_generator(conv_dim=8, repeat_num=2)
    p = Protector.for_generator(g, ATTRS, R)
    x = torch.rand(1, 3, R, R) * 2 - 1
    labels = torch.zeros(1, 1, len(ATTRS))
    cfg = AttackConfig.for_method("pgd", steps=3, seed=1)
    a = p.protect(x, labels, cfg)
    b = p.protect(x, labels, cfg.replace(feature_weight=5.0))
    assert torch.equal(a.protected[0], b.protected[0])


@pytest.mark.parametrize("value", [-1.0, float("inf"), True])
def test_an_unusable_weight_is_refused_by_name(value):
    with pytest.raises(InvalidInputError) as e:
        AttackConfig.for_method("identity", feature_weight=value)
    assert e.value.field == "feature_weight"
