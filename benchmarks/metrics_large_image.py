"""Input-side SSIM of a protected 12 MP photo (4000x3000, changes inside a 1200x1200 face box):
the whole-image float64 computation against the one limited to the changed region (same value).

    python benchmarks/metrics_large_image.py
"""

import time

import torch

from faceshield.engine.metrics import input_metrics
from faceshield.engine.ops.ssim import ssim

a = torch.rand(1, 3, 3000, 4000) * 2 - 1
b = a.clone()
b[:, :, 800:2000, 1500:2700] = (b[:, :, 800:2000, 1500:2700] + 0.01 * torch.randn(1, 3, 1200, 1200)).clamp(-1, 1)
t = time.perf_counter()
whole = float(ssim((a.double() + 1) / 2, (b.double() + 1) / 2)[0])
print(f"whole image: {time.perf_counter() - t:.2f} s, SSIM {whole:.10f}")
t = time.perf_counter()
local = input_metrics(a, b)[0].ssim
print(f"changed region: {time.perf_counter() - t:.2f} s (all input metrics), SSIM {local:.10f}")
