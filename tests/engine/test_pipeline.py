"""FaceShieldEngine: uint8 in, uint8 out, metrics of what the caller receives."""

import numpy as np
import pytest

from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet, ProtectRequest
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.pipeline import Limits
from tests.helpers import ATTRS, ellipse_mask, tiny_generator


@pytest.fixture(scope="module")
def engine():
    models = ModelSet("test", "1", tiny_generator(), ATTRS, 128, trained=False)
    return FaceShieldEngine(models, limits=Limits(max_pixels=1_000_000, max_steps=20, max_batch=4))


def test_protect_returns_metrics_of_the_delivered_image(engine, portrait):
    mask = ellipse_mask(128, 128).numpy()
    out = engine.protect(
        [ProtectRequest(portrait, targets=["Male", "Young"], saliency_mask=mask, seed=1)],
        AttackConfig.for_method("union-saliency", steps=3),
        extras=True,
    )[0]
    assert out.protected.shape == portrait.shape and out.protected.dtype == np.uint8
    diff = np.abs(out.protected.astype(int) - portrait.astype(int))
    assert diff.max() <= int(0.05 * 127.5)
    outside = out.masks["union"] == 0  # at 128x128 the mask grid is the image grid
    assert outside.sum() > 100  # the untrained generator edits almost everywhere, so M_ma is wide
    assert (diff.max(axis=2)[outside] == 0).all()  # outside M_un nothing moved, after rounding too
    # Metrics are measured on the 8-bit result the caller receives.
    l1 = np.abs(out.protected / 255.0 - portrait / 255.0).mean()
    assert out.input.l1 == pytest.approx(l1, abs=1e-6)
    again_input, again_targets = engine.evaluate(portrait, out.protected, targets=["Male", "Young"])
    assert again_input.psnr == pytest.approx(out.input.psnr, abs=1e-6)
    assert [t.mse for t in again_targets] == pytest.approx([t.mse for t in out.targets], abs=1e-6)
    assert set(out.masks) == {"saliency", "manipulation", "union"}
    assert out.outputs_original.shape == (2, 128, 128, 3) and out.outputs_protected.dtype == np.uint8


def test_mask_coverage_measures_the_step_mask_of_the_face_crop(engine, portrait):
    """The figure that explains a masked method's miss: how much of the crop it may move."""
    h, w = portrait.shape[:2]
    half = np.zeros((h, w), np.float32)
    half[:, : w // 2] = 1.0  # the face box is the whole 128x128 image here
    faint = np.full((h, w), 0.25, np.float32)
    cfg = AttackConfig.for_method("saliency-aware", steps=1)
    for mask, coverage, mean in ((half, 0.5, 0.5), (faint, 0.0, 0.25)):
        [out] = engine.protect([ProtectRequest(portrait, targets=["Male"], saliency_mask=mask)], cfg)
        assert out.mask_coverage == pytest.approx(coverage, abs=0.02)
        assert out.mask_mean == pytest.approx(mean, abs=0.02)
    [plain] = engine.protect([ProtectRequest(portrait, targets=["Male"])], AttackConfig.for_method("pgd", steps=1))
    assert plain.mask_coverage == 1.0 and plain.mask_mean == 1.0  # unmasked: the whole box moves


def test_limits_and_consistency_are_enforced(engine, portrait):
    cfg = AttackConfig.for_method("pgd", steps=1)
    with pytest.raises(InvalidInputError) as err:
        engine.protect([ProtectRequest(portrait)], cfg.replace(steps=50))
    assert err.value.field == "steps"  # the engine's configured maximum (20), not the global one
    with pytest.raises(InvalidInputError, match="at most 4"):
        engine.protect([ProtectRequest(portrait)] * 5, cfg)
    with pytest.raises(InvalidInputError, match="same targets"):
        engine.protect([ProtectRequest(portrait, targets=["Male"]), ProtectRequest(portrait, targets=["Young"])], cfg)
    with pytest.raises(InvalidInputError) as err:
        engine.protect([ProtectRequest(portrait, original_attributes=[1, 0, 2, 0, 0])], cfg)
    assert err.value.field == "original_attributes"
    with pytest.raises(InvalidInputError) as err:
        engine.protect([ProtectRequest(np.zeros((2000, 2000, 3), np.uint8))], cfg)
    assert err.value.field == "image"
    with pytest.raises(InvalidInputError) as err:
        engine.evaluate(portrait, portrait[:64])
    assert err.value.field == "protected"


def test_out_of_memory_splits_the_batch_without_losing_or_changing_items(portrait):
    import torch

    real = tiny_generator()

    class SmallDevice(torch.nn.Module):
        """Raises the device's out-of-memory error above 2 images a call, like a full GPU."""

        def forward(self, x, c):
            if x.shape[0] > 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return real(x, c)

    models = ModelSet("test", "1", SmallDevice(), ATTRS, 128, trained=False)
    small = FaceShieldEngine(models, limits=Limits(max_batch=8), precision="fp32")  # bf16 sums by batch
    big = FaceShieldEngine(
        ModelSet("test", "1", real, ATTRS, 128, trained=False), limits=Limits(max_batch=8), precision="fp32"
    )
    reqs = [
        ProtectRequest(np.ascontiguousarray(np.roll(portrait, 9 * i, axis=1)), targets=["Male"], seed=i)
        for i in range(5)
    ]
    cfg = AttackConfig.for_method("pgd", steps=2)
    split = small.protect(reqs, cfg)
    whole = big.protect(reqs, cfg)
    assert small.counters["oom_splits"] >= 2
    for a, b in zip(split, whole, strict=True):
        assert a is not None and np.abs(a.protected.astype(int) - b.protected.astype(int)).max() <= 3


def test_engine_counters_change_only_under_its_lock(portrait):
    engine = FaceShieldEngine(ModelSet("test", "1", tiny_generator(), ATTRS, 128, trained=False))

    class Guarded(dict):
        def __setitem__(self, key, value):
            assert engine._lock.locked(), f"counter {key} updated outside the engine's lock"
            super().__setitem__(key, value)

    engine.counters = Guarded(engine.counters)
    engine.protect([ProtectRequest(portrait, targets=["Male"])], AttackConfig.for_method("pgd", steps=1))
    assert engine.counters["images_protected"] == 1 and engine.counters["image_steps"] == 1
