"""Verified protection (ensure, early stop, the verdict) and the robust stage's transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet, Policy, ProtectRequest, Victim
from faceshield.engine.attack.rounds import plan_rounds
from faceshield.engine.config import ENSURE, FIXED
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import decode_image, encode_png, to_tensor
from faceshield.engine.io.processing import jpeg as pillow_jpeg
from faceshield.engine.models.translator import TranslatorSpec, build_translator
from faceshield.engine.models.victims import Unconditional
from faceshield.engine.ops.filters import Blur
from faceshield.engine.ops.transforms import jpeg, resize_down_up
from tests.helpers import ATTRS, tiny_generator

# Differentiable JPEG against libjpeg (Pillow), mean absolute difference in [0, 1] units on a real
# photo: the codec model differs in chroma subsampling's filters and rounding (measured 0.004-0.008).
JPEG_TOLERANCE = 0.012


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open("assets/astronaut.png").convert("RGB").crop((120, 0, 248, 128)))


@pytest.mark.parametrize("quality", [75, 85, 95])
def test_differentiable_jpeg_agrees_with_pillow(photo, quality):
    ours = (jpeg(to_tensor(photo)[None], quality)[0] + 1) / 2
    theirs = to_tensor(pillow_jpeg(quality)(photo)) * 0.5 + 0.5
    original = to_tensor(photo) * 0.5 + 0.5
    diff = float((ours - theirs).abs().mean())
    assert diff < JPEG_TOLERANCE, diff
    # ... and it does compress: it is closer to libjpeg's output than the photo itself is.
    assert diff < float((original - theirs).abs().mean()) or quality == 95


@pytest.mark.parametrize(
    "transform",
    [lambda x: jpeg(x, 80), lambda x: resize_down_up(x, 0.6), Blur("gaussian", 11, 1.0)],
    ids=["jpeg", "resize", "blur"],
)
def test_gradients_flow_through_every_transform(photo, transform):
    x = to_tensor(photo)[None].requires_grad_(True)
    (grad,) = torch.autograd.grad(transform(x).square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_transform_parameters_are_checked():
    x = torch.zeros(1, 3, 32, 32)
    for bad in (0, 101, float("nan")):
        with pytest.raises(InvalidInputError, match="jpeg_quality"):
            jpeg(x, bad)
    with pytest.raises(InvalidInputError, match="resize_factor"):
        resize_down_up(x, 1.5)


def sensitive_victims() -> list[Victim]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        t = build_translator(TranslatorSpec("resnet", ngf=4, blocks=1, norm="instance-affine"))
        for p in t.parameters():
            p.data.add_(torch.randn_like(p) * 0.3)
    return [
        Victim("stargan", "stargan", tiny_generator(conv_dim=8, repeat_num=2), 32, list(ATTRS)),
        Victim("tone", "translator", Unconditional(t.eval().requires_grad_(False)), 32),
    ]


@pytest.fixture(scope="module")
def engine():
    return FaceShieldEngine(ModelSet("two", "1", victims=sensitive_victims()))


def test_a_budget_of_no_extra_steps_is_the_plain_method(engine, photo):
    config = AttackConfig.for_method("pgd", steps=4, seed=2)
    plain = engine.protect([ProtectRequest(photo, seed=2)], config)[0]
    no_extra = engine.protect([ProtectRequest(photo, seed=2)], config, policy=Policy(kind="ensure", budget_steps=4))[0]
    assert np.array_equal(plain.protected, no_extra.protected)
    assert plain.verdict.steps == no_extra.verdict.steps == 4 and no_extra.verdict.rounds == 1
    assert plan_rounds(10, Policy(kind="ensure", budget_steps=25)) == [(10, False), (10, False), (5, True)]
    assert plan_rounds(10, FIXED) == [(10, False)]


def test_a_reported_protection_holds_when_measured_again_from_the_saved_png(engine, photo, tmp_path):
    config = AttackConfig.for_method("pgd", steps=3, seed=1)
    out = engine.protect([ProtectRequest(photo, seed=1)], config, policy=ENSURE)[0]
    assert out.verdict.protected, out.verdict
    path = tmp_path / "protected.png"
    path.write_bytes(encode_png(out.protected))
    again, rows = engine.evaluate(photo, decode_image(path.read_bytes()))
    assert all(t.success for t in rows) and len(rows) == 6
    assert [t.mse for t in rows] == pytest.approx([t.mse for t in out.targets], abs=1e-6)


def test_early_stop_spends_fewer_passes_for_the_same_verdict(photo):
    engine = FaceShieldEngine(ModelSet("tone", "1", victims=sensitive_victims()[1:]))
    config = AttackConfig.for_method("pgd", steps=10, seed=5)
    fixed = engine.protect([ProtectRequest(photo, seed=5)], config)[0]
    early = engine.protect([ProtectRequest(photo, seed=5)], config, policy=Policy(early_stop=True))[0]
    assert fixed.verdict.protected and early.verdict.protected
    assert early.verdict.steps < fixed.verdict.steps and early.verdict.passes < fixed.verdict.passes


def test_a_verdict_never_calls_an_undisrupted_image_protected(photo):
    inert = Victim("inert", "translator", Unconditional(torch.nn.Identity()), 32)  # G(x) = x: tiny outputs
    engine = FaceShieldEngine(ModelSet("inert", "1", victims=[inert]))
    out = engine.protect([ProtectRequest(photo)], AttackConfig.for_method("pgd", steps=2), policy=ENSURE)[0]
    assert not out.verdict.protected and out.verdict.not_disrupted == ("inert/inert",)
    # Its MSE saturates at the epsilon ball: the stall rule ends it once a round adds < 10%.
    assert 1 < out.verdict.rounds < 30 and out.verdict.steps == 2 * out.verdict.rounds < ENSURE.budget_steps


class Constant(torch.nn.Module):
    """G(x) = a fixed image: no perturbation moves it."""

    def forward(self, x):
        return x * 0.0 + 0.25  # in the graph, with a zero gradient


def test_stall_rule_an_edit_nothing_moves_costs_one_round_and_the_others_go_on(photo):
    fixed = Victim("fixed", "translator", Unconditional(Constant()), 32)
    tone = sensitive_victims()[1]
    engine = FaceShieldEngine(ModelSet("stall", "1", victims=[fixed]))
    out = engine.protect([ProtectRequest(photo)], AttackConfig.for_method("pgd", steps=3), policy=ENSURE)[0]
    assert not out.verdict.protected and out.verdict.not_disrupted == ("fixed/fixed",)
    assert out.verdict.rounds == 1 and out.verdict.steps == 3  # one round, not the 60-step budget
    both = FaceShieldEngine(ModelSet("stall2", "1", victims=[fixed, tone]))
    out = both.protect([ProtectRequest(photo, seed=3)], AttackConfig.for_method("pgd", steps=3), policy=ENSURE)[0]
    assert out.verdict.not_disrupted == ("fixed/fixed",)  # reported, never called protected
    assert not out.verdict.protected and out.verdict.steps < ENSURE.budget_steps
    assert all(t.success for t in out.targets if t.victim == tone.name)  # the other victim still disrupted


def test_processing_the_verdict_must_survive(engine, photo):
    config = AttackConfig.for_method("pgd", steps=3, seed=1)
    out = engine.protect(
        [ProtectRequest(photo, seed=1)],
        config,
        policy=Policy(kind="ensure", early_stop=True, verify_after=("jpeg75", "downscale2")),
    )[0]
    assert set(out.verdict.after) == {"jpeg75", "downscale2"}
    assert out.verdict.protected == (all(out.verdict.after.values()) and not out.verdict.not_disrupted)


@pytest.mark.parametrize(
    "policy, field",
    [
        (Policy(kind="sometimes"), "policy"),
        (Policy(kind="ensure", budget_steps=-1), "budget_steps"),
        (Policy(kind="ensure", budget_steps=5), "budget_steps"),  # below the first round's 10 steps
        (Policy(kind="ensure", budget_steps=10_000), "budget_steps"),
        (Policy(margin=float("nan")), "margin"),
        (Policy(margin=-0.1), "margin"),
        (Policy(verify_after=("jpeg101",)), "verify_after"),
        (Policy(verify_after=("jpeg0",)), "verify_after"),
        (Policy(verify_after=("sharpen",)), "verify_after"),
    ],
)
def test_bad_policies_name_their_field(policy, field):
    with pytest.raises(InvalidInputError) as err:
        policy.validate(max_steps=100, steps=10)
    assert err.value.field == field


def test_the_robust_stage_needs_room_for_its_transforms(photo):
    small = Victim("small", "stargan", tiny_generator(), 16, list(ATTRS))
    engine = FaceShieldEngine(ModelSet("small", "1", victims=[small]))
    with pytest.raises(InvalidInputError, match="at least 32x32") as err:
        engine.protect(
            [ProtectRequest(photo, saliency_mask=np.ones(photo.shape[:2]))],
            AttackConfig.for_method("union-saliency-robust", steps=1),
        )
    assert err.value.field == "method"
