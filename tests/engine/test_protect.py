"""The protection loop (docs/method.md §3): reference equivalence, masks, bounds, batching, any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceshield.engine import METHODS, AttackConfig, Protector, create_labels
from faceshield.engine.config import Stages
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import to_tensor
from faceshield.engine.metrics import input_metrics
from tests.helpers import ATTRS, ellipse_mask, tiny_generator


@pytest.fixture(scope="module")
def setup(portrait):
    g = tiny_generator(conv_dim=8, repeat_num=6)
    x = to_tensor(portrait)[None]
    labels = create_labels(torch.zeros(1, 5), ATTRS, ["Blond_Hair"])
    return Protector.for_generator(g, ATTRS, 128), g, x, labels


def ruiz_perturb(G, X_nat, y, c_trg, X_start, epsilon=0.05, k=10, a=0.01):
    """Ruiz et al.'s LinfPGDAttack.perturb, written from docs/method.md §3: random start (given), sign
    step on the MSE to the clean output, projection to the epsilon ball, clamp to [-1, 1]."""
    X = X_start.clone()
    trajectory = []
    for _ in range(k):
        X.requires_grad = True
        loss = torch.nn.functional.mse_loss(G(X, c_trg), y)
        (grad,) = torch.autograd.grad(loss, X)
        X_adv = X + a * grad.sign()
        eta = torch.clamp(X_adv - X_nat, min=-epsilon, max=epsilon)
        X = torch.clamp(X_nat + eta, min=-1, max=1).detach()
        trajectory.append(X)
    return X, trajectory


def test_pgd_equals_ruiz_perturb_step_for_step(setup):
    p, g, x, labels = setup
    c = labels[:, 0]
    with torch.no_grad():
        y = g(x, c)
    for k in (1, 4, 10):
        cfg = AttackConfig.for_method("pgd", steps=k, seed=7)
        ours = p.protect(x, labels, cfg)
        start = x + ours.start[0][None]
        ref, _ = ruiz_perturb(g, x, y, c, start, k=k)
        assert torch.equal(ours.protected[0], ref[0]), f"differs after {k} steps"
    # The start is U(-eps, eps) per pixel, unclipped, as Ruiz's.
    s = ours.start[0]
    assert s.abs().max() <= 0.05 and s.abs().max() > 0.049 and abs(float(s.mean())) < 0.002


def test_union_saliency_moves_only_masked_pixels_within_epsilon(setup):
    p, g, x, labels = setup
    sal = ellipse_mask(128, 128)
    r = p.protect(x, labels, AttackConfig.for_method("union-saliency"), saliency_masks=[sal])
    delta = r.protected[0] - x[0]
    assert delta.abs().max() <= 0.05 + 1e-6
    untouched = (r.union_mask[0, 0] == 0).expand_as(delta)
    assert untouched.any()
    assert torch.equal(r.protected[0][untouched], x[0][untouched])  # exactly unchanged
    assert (delta[~untouched] != 0).float().mean() > 0.5
    # M_un = alpha * M_sm + beta * M_ma (docs/method.md §3), with M_ma = d where d >= 0.5.
    torch.testing.assert_close(r.union_mask, r.saliency_mask + 0.1 * r.manipulation_mask)
    m = r.manipulation_mask
    assert ((m == 0) | (m >= 0.5)).all()


def _noise_mse(g, x, labels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    noisy = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * 0.05).clamp(-1, 1)
    c = labels[:, 0]
    with torch.no_grad():
        return float((g(noisy, c) - g(x, c)).pow(2).mean())


@pytest.mark.slow
def test_every_configuration_beats_uniform_noise_and_union_keeps_higher_psnr(setup):
    p, g, x, labels = setup
    sal = ellipse_mask(128, 128, ry=0.45, rx=0.35)
    noise = _noise_mse(g, x, labels)
    psnr, mse = {}, {}
    for name in (m for m, stages in METHODS.items() if not stages.identity):  # identity: needs a real face
        r = p.protect(x, labels, AttackConfig.for_method(name, seed=3), saliency_masks=[sal])
        mse[name] = float((r.outputs - r.references).pow(2).mean())
        psnr[name] = input_metrics(x, r.protected[0][None])[0].psnr
    for name, value in mse.items():
        assert value > 2 * noise, f"{name}: output MSE {value:.5f} vs uniform noise {noise:.5f}"
    assert psnr["union-saliency"] > psnr["pgd"] + 1.0, psnr


@pytest.mark.slow
def test_one_image_alone_equals_the_same_image_in_a_batch(setup, portrait):
    p, g, x, _ = setup
    others = torch.stack([x[0].flip(-1), x[0].flip(-2), -x[0]])
    batch = torch.cat([others[:2], x, others[2:]])
    labels = create_labels(torch.tensor([[1.0, 0, 0, 0, 1]] * 4), ATTRS, ["Blond_Hair", "Male"])
    cfg = AttackConfig.for_method("union-saliency", steps=5, seed=11)
    masks = [ellipse_mask(128, 128)] * 4
    together = p.protect(batch, labels, cfg, saliency_masks=masks, seeds=[1, 2, 11, 4])
    alone = p.protect(x, labels[2:3], cfg, saliency_masks=masks[:1], seeds=[11])
    a, b = alone.protected[0], together.protected[2]
    # Equal up to float32 summation order inside batched convolutions: a sign that flips on a
    # near-zero gradient moves a pixel by one step at most, and almost never.
    assert (a - b).abs().max() <= 2 * 0.01 + 1e-6
    assert (a != b).float().mean() < 1e-3


def test_seeded_runs_are_deterministic_and_seeds_matter(setup):
    p, _, x, labels = setup
    cfg = AttackConfig.for_method("pgd", steps=2, seed=5)
    a = p.protect(x, labels, cfg).protected[0]
    b = p.protect(x, labels, cfg).protected[0]
    c = p.protect(x, labels, cfg.replace(seed=6)).protected[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_any_size_image_keeps_its_size_and_pixels_outside_the_face_box(setup):
    p, *_ = setup
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.random((3, 150, 230), dtype=np.float32)) * 2 - 1
    labels = create_labels(torch.zeros(1, 5), ATTRS, ["Male"])
    box = (40, 10, 180, 140)  # 140 x 130: resized to 128 for the generator
    r = p.protect([img], labels, AttackConfig.for_method("pgd", steps=3), boxes=[box])
    out = r.protected[0]
    assert out.shape == img.shape
    inside = torch.zeros_like(img, dtype=torch.bool)
    inside[:, 10:140, 40:180] = True
    assert torch.equal(out[~inside], img[~inside])
    assert (out - img).abs().max() <= 0.05 + 1e-6
    assert (out[inside] != img[inside]).float().mean() > 0.9
    # Default box: the centre square.
    r2 = p.protect([img], labels, AttackConfig.for_method("pgd", steps=1))
    changed = (r2.protected[0] != img).any(dim=0)
    cols = changed.any(dim=0).nonzero().flatten()
    assert int(cols.min()) == 40 and int(cols.max()) == 189


def test_mixed_sizes_in_one_batch(setup):
    p, *_ = setup
    imgs = [torch.rand(3, 128, 128) * 2 - 1, torch.rand(3, 96, 200) * 2 - 1, torch.rand(3, 128, 128) * 2 - 1]
    labels = create_labels(torch.zeros(3, 5), ATTRS, ["Young"])
    r = p.protect(imgs, labels, AttackConfig.for_method("pgd", steps=2))
    assert [t.shape for t in r.protected] == [im.shape for im in imgs]
    alone = p.protect(imgs[1:2], labels[1:2], AttackConfig.for_method("pgd", steps=2))
    assert (alone.protected[0] - r.protected[1]).abs().max() <= 0.02 + 1e-6


def test_cancelled_items_leave_the_batch_at_the_next_step(setup):
    p, _, x, _ = setup
    batch = torch.cat([x, x.flip(-1), x.flip(-2)])
    labels = create_labels(torch.zeros(3, 5), ATTRS, ["Male"])
    polls = {"n": 0}

    def cancelled():
        polls["n"] += 1
        return [False, polls["n"] > 2, False]  # polled after the start, then after each step

    full = p.protect(batch, labels, AttackConfig.for_method("pgd", steps=6))
    r = p.protect(batch, labels, AttackConfig.for_method("pgd", steps=6), cancelled=cancelled)
    assert r.protected[1] is None and r.cancelled == [False, True, False]
    assert torch.equal(r.protected[0], full.protected[0])
    assert r.image_steps == 3 * 2 + 2 * 4  # item 1 ran two of the six steps
    assert full.image_steps == 18


def test_eot_and_spread_spectrum_follow_ruiz_blur_schedule():
    from itertools import islice

    from faceshield.engine.ops.filters import ruiz_blur_schedule

    seq = [(b.kind, b.kernel, b.sigma) for b in islice(ruiz_blur_schedule(), 10)]
    assert seq[:8] == [
        ("gaussian", 11, 1.0),
        ("gaussian", 11, 1.5),
        ("gaussian", 11, 2.0),
        ("gaussian", 11, 2.5),
        ("gaussian", 11, 3.0),
        ("box", 5, 0.0),
        ("box", 7, 0.0),
        ("box", 9, 0.0),
    ]
    assert seq[8:] == seq[:2]


def test_stage_switches_are_data(setup):
    p, _, x, labels = setup
    # A configuration that no method names (uniform start, Gaussian blur, no mask) is reachable by
    # its stages alone, and equals saliency-aware given a mask of ones over the whole face box:
    # the stages compose, they are not code paths of their own.
    custom = AttackConfig.for_method("pgd", steps=3).replace(
        stages=Stages(start="uniform", mask="none", ssim=False, blur="gaussian")
    )
    assert custom.stages not in METHODS.values()
    ones = torch.ones(128, 128)
    named = p.protect(x, labels, AttackConfig.for_method("saliency-aware", steps=3), saliency_masks=[ones])
    built = p.protect(x, labels, custom)
    assert torch.equal(built.protected[0], named.protected[0])
    plain = p.protect(x, labels, AttackConfig.for_method("pgd", steps=3))
    assert not torch.equal(built.protected[0], plain.protected[0])  # the blur stage did something


def test_bad_inputs_raise_typed_errors(setup):
    p, _, x, labels = setup
    with pytest.raises(InvalidInputError, match="saliency"):
        p.protect(x, labels, AttackConfig.for_method("union-saliency"))  # no model, no mask
    with pytest.raises(InvalidInputError) as err:
        p.protect(x * float("nan"), labels, AttackConfig.for_method("pgd"))
    assert err.value.field == "image"
    with pytest.raises(InvalidInputError) as err:
        p.protect(x, labels, AttackConfig.for_method("pgd"), boxes=[(0, 0, 500, 500)])
    assert err.value.field == "face_box"
    with pytest.raises(InvalidInputError) as err:
        p.protect(x, labels, AttackConfig.for_method("saliency-aware"), saliency_masks=[torch.full((128, 128), 2.0)])
    assert err.value.field == "saliency_mask"
    with pytest.raises(InvalidInputError) as err:
        p.protect(x, labels[:, :, :3], AttackConfig.for_method("pgd"))
    assert err.value.field == "targets"
