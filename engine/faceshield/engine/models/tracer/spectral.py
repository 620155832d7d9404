"""Exportable stand-ins for the two operations of the official TRACER that ONNX cannot express:
the FFT high-pass of the edge module and `torch.quantile` in union attention.

Each is the same function as the textbook operation, rewritten as matrix products, sorting and
indexing; tests compare them with `torch.fft` and `torch.quantile`.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def radial_lowpass_mask(rows: int, cols: int, radius: float) -> torch.Tensor:
    """The official edge module's mask, in fftshift-ed coordinates: 1 where the distance from
    (rows/2, rows/2) is below `radius`, else 0. (The official code measures both axes from
    rows/2; for the square maps TRACER produces that is the centre.)"""
    i = np.arange(rows, dtype=np.float64)[:, None]
    j = np.arange(cols, dtype=np.float64)[None, :]
    dist = np.sqrt((i - rows / 2) ** 2 + (j - rows / 2) ** 2)
    return torch.from_numpy((dist < radius).astype(np.float32))


def highpass_reference(x: torch.Tensor, radius: float) -> torch.Tensor:
    """The official high-pass, with torch.fft: |ifft2(ifftshift(fftshift(fft2(x)) * (1 - mask)))|.
    Kept as the reference the exportable version is tested against."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(x, dim=(-2, -1)))
    mask = radial_lowpass_mask(x.shape[-2], x.shape[-1], radius).to(x.device)
    high = torch.fft.ifftshift(spectrum * (1 - mask))
    return torch.abs(torch.fft.ifft2(high, dim=(-2, -1)))


class FrequencyHighPass(torch.nn.Module):
    """|x - lowpass(x)| for a fixed map size, as real matrix products.

    Why this equals the official FFT high-pass: shifting the spectrum, masking and shifting back
    is masking the unshifted spectrum with ifftshift(1 - mask); and since the inverse DFT is
    linear, ifft2(X * (1 - L)) = x - ifft2(X * L). The low-pass mask L is nonzero only on a
    few frequency rows U and columns V (those within `radius` of zero), so the low-pass needs
    only the DFT rows U and columns V:

        low = conj(F_R)[:, U] @ ((F_R[U, :] @ x @ F_C[:, V]) * L[U, V]) @ conj(F_C)[V, :] / (R C)

    with F_n[u, m] = exp(-2 pi i u m / n) split into cos and sin, so everything is real. The
    result is complex in general (the official mask is not symmetric for odd sizes), hence
    |.| = sqrt((x - Re low)^2 + (Im low)^2), as torch.abs of the complex ifft.

    The matrices are buffers (not saved in the state dict) for `size`; another input size
    builds its own set on first use (eager mode only; exported graphs have a fixed size).
    """

    _NAMES = ("dft_left", "dft_right_fwd", "dft_mid", "dft_right_inv", "lowpass_mask")

    def __init__(self, radius: float, size: tuple[int, int] | None = None):
        super().__init__()
        self.radius = radius
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, ...]] = {}
        self.size = size
        if size is not None:
            for name, t in zip(self._NAMES, self._matrices(*size), strict=True):
                self.register_buffer(name, t, persistent=False)

    def _matrices(self, rows: int, cols: int) -> tuple[torch.Tensor, ...]:
        low = torch.fft.ifftshift(radial_lowpass_mask(rows, cols, self.radius)).numpy()
        u = np.flatnonzero(low.any(axis=1))
        v = np.flatnonzero(low.any(axis=0))

        def dft(n: int, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # (len(freqs), n) cos and sin of 2 pi f m / n; f*m reduced mod n first so the angle
            # is exact in float64 before rounding to float32.
            angle = 2 * math.pi * ((freqs[:, None] * np.arange(n)[None, :]) % n) / n
            return np.cos(angle), np.sin(angle)

        ar, ai = dft(rows, u)  # F_R[U, :] = ar - i ai
        br, bi = dft(cols, v)  # F_C[V, :] = br - i bi  (F_C symmetric, so F_C[:, V] = (br - i bi)^T)
        # forward: [Ar; Ai] @ x @ [Br^T, Bi^T] -> blocks [[Ar x Br^T, Ar x Bi^T], [Ai x Br^T, Ai x Bi^T]]
        left = np.concatenate([ar, ai], axis=0)  # (2|U|, R)
        right_fwd = np.concatenate([br.T, bi.T], axis=1)  # (C, 2|V|)
        # inverse, left factor: [[Ar^T, -Ai^T], [Ai^T, Ar^T]] @ [Zr; Zi] -> [Gr; Gi]
        mid = np.block([[ar.T, -ai.T], [ai.T, ar.T]])  # (2R, 2|U|)
        # inverse, right factor: [Gr, Gi] @ [[Br, Bi], [-Bi, Br]] -> [Re, Im]  (unnormalized)
        right_inv = np.block([[br, bi], [-bi, br]]) / (rows * cols)  # (2|V|, 2C)
        mask = low[np.ix_(u, v)]
        f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        return f32(left), f32(right_fwd), f32(mid), f32(right_inv), f32(mask)

    def _get(self, rows: int, cols: int, device: torch.device):
        if self.size == (rows, cols):
            return tuple(getattr(self, name) for name in self._NAMES)
        key = (rows, cols)
        if key not in self._cache:
            self._cache[key] = self._matrices(rows, cols)
        return tuple(t.to(device) for t in self._cache[key])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2], x.shape[-1]
        left, right_fwd, mid, right_inv, mask = self._get(rows, cols, x.device)
        nu, nv = mask.shape
        if nu == 0:  # radius 0: nothing is removed
            return x.abs()
        y = left @ x @ right_fwd  # (.., 2|U|, 2|V|)
        p_br, p_bi = y[..., :nu, :nv], y[..., :nu, nv:]
        q_br, q_bi = y[..., nu:, :nv], y[..., nu:, nv:]
        # X = (Ar - i Ai) x (Br - i Bi)^T: real Ar x Br^T - Ai x Bi^T, imaginary -(Ar x Bi^T + Ai x Br^T)
        z = torch.cat([(p_br - q_bi) * mask, -(p_bi + q_br) * mask], dim=-2)  # [Zr; Zi]
        g = mid @ z  # [Gr; Gi], (.., 2R, |V|)
        g = torch.cat([g[..., :rows, :], g[..., rows:, :]], dim=-1)  # [Gr, Gi], (.., R, 2|V|)
        low = g @ right_inv  # [Re, Im], (.., R, 2C)
        re, im = low[..., :cols], low[..., cols:]
        # The floor (1e-30, so at most 1e-15 added to |.|) keeps the gradient finite where the
        # magnitude is exactly zero; sqrt's derivative there is infinite (NaN after the chain rule).
        return torch.sqrt(((x - re) ** 2 + im**2).clamp_min(1e-30))


def quantile_lastdim(x: torch.Tensor, q: float) -> torch.Tensor:
    """`torch.quantile(x, q, dim=-1, keepdim=True)` (linear interpolation) for a fixed last
    dimension, built from top-k and indexing so that it exports. Finite inputs only."""
    n = x.shape[-1]
    # torch.quantile computes the rank and the interpolation weight in the input's dtype.
    rank = np.float32(q) * np.float32(n - 1)
    below = int(math.floor(rank))
    above = min(below + 1, n - 1)
    weight = float(rank - np.float32(below))
    smallest = torch.topk(x, above + 1, dim=-1, largest=False, sorted=True).values
    lo, hi = smallest[..., below : below + 1], smallest[..., above : above + 1]
    # torch.lerp's two-sided formula, so the result is bit-for-bit where it can be.
    if weight < 0.5:
        return lo + weight * (hi - lo)
    return hi - (hi - lo) * (1 - weight)
