"""docs/method.md §5 metrics: SSIM and PSNR against scikit-image; Ruiz's rule; the masked variant."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from faceshield.engine.metrics import SUCCESS_MSE, input_metrics, output_metrics, success_rate
from faceshield.engine.ops.ssim import SSIM, ssim


@pytest.mark.parametrize("shape", [(3, 64, 64), (3, 37, 53), (3, 11, 11)])
def test_ssim_and_psnr_match_scikit_image(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, shape), 0, 1).astype(np.float32)
    ref_ssim = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=0
    )
    ref_psnr = peak_signal_noise_ratio(a, b, data_range=1)
    ta, tb = torch.from_numpy(a)[None], torch.from_numpy(b)[None]
    assert abs(float(ssim(ta.double(), tb.double())[0]) - ref_ssim) < 1e-4
    assert abs(float(SSIM()(ta, tb)[0]) - ref_ssim) < 1e-4  # module form agrees with the function
    m = input_metrics(ta * 2 - 1, tb * 2 - 1)[0]  # input_metrics takes generator space
    assert abs(m.ssim - ref_ssim) < 1e-4 and abs(m.psnr - ref_psnr) < 1e-4
    d = a - b
    assert m.l1 == pytest.approx(np.abs(d).mean(), abs=1e-6)
    assert m.l2 == pytest.approx(np.sqrt((d**2).mean()), abs=1e-6)
    assert m.linf == pytest.approx(np.abs(d).max(), abs=1e-6)


def test_ssim_is_differentiable_and_one_for_identical_images():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(ssim(x, x.detach()), torch.ones(2, dtype=torch.float64))
    y = (x.detach() + 0.1 * torch.randn_like(x)).clamp(0, 1)
    (g,) = torch.autograd.grad(ssim(x, y).sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_ssim_gradcheck_small():
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ssim(t, y), (x,))


def test_identical_images_give_infinite_psnr_not_an_error():
    x = torch.zeros(1, 3, 16, 16)
    assert input_metrics(x, x)[0].psnr == float("inf")


def test_output_metrics_success_rule_and_masked_variant():
    R = 16
    originals = torch.zeros(2, 3, R, R)
    refs = torch.zeros(2, 2, 3, R, R)
    refs[0, 0, :, :8] = 0.5  # target 0 of image 0 edits the left half: sum_c |.| = 1.5 > 0.5
    outs = refs.clone()
    outs[0, 0, :, :8] += 0.4  # disrupted inside the edited area: masked MSE 0.16
    outs[1, 1] += 0.3  # image 1 target 1: MSE 0.09 > 0.05, but its edit mask is empty
    m = output_metrics(originals, refs, outs, ["a", "b"])
    assert m[0][0].mse == pytest.approx(0.16 / 2) and m[0][0].success
    assert m[0][0].masked_mse == pytest.approx(0.16) and m[0][0].masked_success
    assert m[0][0].edited_fraction == pytest.approx(0.5)
    assert not m[0][1].success and not m[0][1].masked_success
    assert m[1][1].mse == pytest.approx(0.09) and m[1][1].success
    assert m[1][1].masked_mse == 0.0 and not m[1][1].masked_success  # empty mask: failure, not NaN
    assert success_rate(m) == pytest.approx(2 / 4)
    assert success_rate(m, masked=True) == pytest.approx(1 / 4)
    assert SUCCESS_MSE == 0.05


@pytest.mark.parametrize("box", [(40, 30, 120, 110), (0, 0, 60, 50), (100, 70, 150, 120), (0, 0, 150, 120)])
def test_ssim_penalty_on_the_face_region_equals_the_whole_image(box):
    """Region-limited and precomputed-original forms (what the attack runs each step) give the
    whole-image penalty and its gradient."""
    from faceshield.engine.attack.objective import SSIMPenalty, ssim_penalty
    from faceshield.engine.ops.geometry import Box

    torch.manual_seed(0)
    b = Box(*box)
    original = torch.rand(2, 3, 120, 150, dtype=torch.float64) * 2 - 1
    x = original.clone()
    x[:, :, b.top : b.bottom, b.left : b.right] += 0.05 * torch.randn(2, 3, b.height, b.width, dtype=torch.float64)
    x.requires_grad_(True)
    whole = ssim_penalty(x, original)
    local = ssim_penalty(x, original, b)
    torch.testing.assert_close(local, whole, atol=1e-12, rtol=0)
    (g_whole,) = torch.autograd.grad(whole.sum(), x)
    (g_local,) = torch.autograd.grad(ssim_penalty(x, original, b).sum(), x)
    torch.testing.assert_close(g_local, g_whole, atol=1e-12, rtol=0)
    for module in (SSIMPenalty(original, b), SSIMPenalty(original)):
        kept = module(x)
        torch.testing.assert_close(kept, whole, atol=1e-12, rtol=0)
        (g_kept,) = torch.autograd.grad(module(x).sum(), x)
        torch.testing.assert_close(g_kept, g_whole, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="built for"):
        SSIMPenalty(original, b)(x[:1])


def test_input_ssim_of_a_local_change_equals_the_whole_image_computation():
    torch.manual_seed(1)
    a = torch.rand(1, 3, 90, 130, dtype=torch.float64)
    b = a.clone()
    b[:, :, 30:50, 70:100] = (b[:, :, 30:50, 70:100] + 0.05 * torch.randn(1, 3, 20, 30, dtype=torch.float64)).clamp(
        0, 1
    )
    m = input_metrics(a * 2 - 1, b * 2 - 1)[0]
    assert m.ssim == pytest.approx(float(ssim(a, b)[0]), abs=1e-12)
    assert input_metrics(a * 2 - 1, a * 2 - 1)[0].ssim == 1.0
