"""docs/method.md §5 metrics, on batches.

Input side (original I vs protected x_k, metric space [0, 1]): L1, L2 (RMS), MSE, L-inf, PSNR,
SSIM. Output side (per target, generator space): L1 and MSE between G(x_k, c_t) and
y_t = G(I, c_t); Ruiz et al.'s success rule MSE > 0.05; and CMUA-Watermark's masked MSE over the
pixels the edit changes (sum_c |y_t - I| > 0.5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .ops.ssim import ssim, ssim_where_changed

SUCCESS_MSE = 0.05
EDIT_MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class InputMetrics:
    l1: float
    l2: float
    mse: float
    linf: float
    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class TargetMetrics:
    target: str
    l1: float
    mse: float
    success: bool
    masked_mse: float
    masked_success: bool
    edited_fraction: float
    victim: str = ""  # the generator this target belongs to (a model set may hold several)
    face: int = 0  # which face box of the image (0 for the first, or only, one)
    # SSIM of G(x_k, c_t) against G(I, c_t) in [0, 1]: near 1 with a large MSE is a tone shift of
    # a clean edit, not a broken one (the MSE rule counts both as "disrupted").
    output_ssim: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def input_metrics(original: torch.Tensor, protected: torch.Tensor) -> list[InputMetrics]:
    """Per image, for (N, 3, H, W) pairs in generator space [-1, 1]."""
    a, b = (original.double() + 1) / 2, (protected.double() + 1) / 2
    d = (a - b).flatten(1)
    mse = d.pow(2).mean(dim=1)
    out = []
    for i in range(a.shape[0]):
        s = _ssim_of_changes(a[i : i + 1], b[i : i + 1])
        m = float(mse[i])
        out.append(
            InputMetrics(
                l1=float(d[i].abs().mean()),
                l2=m**0.5,
                mse=m,
                linf=float(d[i].abs().max()),
                psnr=float("inf") if m == 0 else float(10 * torch.log10(torch.tensor(1.0 / m))),
                ssim=s,
            )
        )
    return out


def _ssim_of_changes(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM of one pair, computed only around the pixels that differ (a protected photo changes
    its face box alone; a 12 MP image would otherwise cost seconds of float64 filtering)."""
    rows = (a != b).flatten(0, 1).any(dim=0)
    if not rows.any():
        return 1.0
    ys = rows.any(dim=1).nonzero().flatten()
    xs = rows.any(dim=0).nonzero().flatten()
    return float(ssim_where_changed(a, b, int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1)[0])


def output_metrics(
    originals: torch.Tensor, references: torch.Tensor, outputs: torch.Tensor, targets: list[str]
) -> list[list[TargetMetrics]]:
    """Per image, per target.

    originals (N, 3, R, R): I at generator resolution; references / outputs (N, T, 3, R, R):
    G(I, c_t) and G(x_k, c_t). All in generator space.
    """
    diff = outputs.double() - references.double()
    l1 = diff.abs().flatten(2).mean(dim=2)
    mse = diff.pow(2).flatten(2).mean(dim=2)
    edit = (references.double() - originals.double()[:, None]).abs().sum(dim=2, keepdim=True) > EDIT_MASK_THRESHOLD
    edit = edit.double()
    area = edit.flatten(2).sum(dim=2)  # (N, T) pixels
    masked_sq = (diff.pow(2) * edit).flatten(2).sum(dim=2)
    masked = torch.where(area > 0, masked_sq / (3 * area.clamp(min=1)), torch.zeros_like(area))
    pixels = edit.shape[-1] * edit.shape[-2]
    n, t = outputs.shape[:2]
    structure = ssim(
        ((outputs.double().flatten(0, 1) + 1) / 2).clamp(0, 1),
        ((references.double().flatten(0, 1) + 1) / 2).clamp(0, 1),
    ).reshape(n, t)
    out = []
    for i in range(diff.shape[0]):
        row = []
        for t, name in enumerate(targets):
            has = bool(area[i, t] > 0)
            row.append(
                TargetMetrics(
                    target=name,
                    l1=float(l1[i, t]),
                    mse=float(mse[i, t]),
                    success=bool(mse[i, t] > SUCCESS_MSE),
                    masked_mse=float(masked[i, t]),
                    masked_success=has and bool(masked[i, t] > SUCCESS_MSE),
                    edited_fraction=float(area[i, t]) / pixels,
                    output_ssim=float(structure[i, t]),
                )
            )
        out.append(row)
    return out


def success_rate(per_image: list[list[TargetMetrics]], masked: bool = False) -> float:
    """Successes / (images x targets)."""
    flags = [(m.masked_success if masked else m.success) for row in per_image for m in row]
    return sum(flags) / len(flags) if flags else 0.0
