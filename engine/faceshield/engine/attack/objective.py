"""The objective J(x) that the protection ascends (SPEC 3.5).

J(x) = mean_t MSE(G(blur(x), c_t), y_t) - gamma * (1 - SSIM(x, I)).

The disruption term lives at generator resolution; the SSIM penalty at the image's own
resolution, in metric space. Both are per image, so an image's gradient does not depend on the
rest of its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..ops.geometry import Box
from ..ops.ssim import SSIMAgainst

BlurFn = Callable[[torch.Tensor], torch.Tensor]


def disruption_loss(
    generator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    references: torch.Tensor,
    blurs: Sequence[BlurFn | None],
) -> torch.Tensor:
    """Mean over blurs and targets of MSE(G(blur(x), c_t), y_t), per image.

    inputs (N, 3, R, R); labels (N, T, c); references (N, T, 3, R, R); returns (N,).
    All blurs x targets x images go through the generator as one batch.
    """
    n, t = labels.shape[:2]
    views = torch.stack([inputs if b is None else b(inputs) for b in blurs])  # (B, N, 3, R, R)
    nb = views.shape[0]
    batch = views[:, :, None].expand(nb, n, t, *inputs.shape[1:]).reshape(nb * n * t, *inputs.shape[1:])
    c = labels[None].expand(nb, n, t, labels.shape[-1]).reshape(nb * n * t, labels.shape[-1])
    out = generator(batch, c).reshape(nb, n, t, *inputs.shape[1:])
    return (out - references[None]).pow(2).mean(dim=(3, 4, 5)).mean(dim=(0, 2))


def ssim_penalty(x: torch.Tensor, original: torch.Tensor, box: Box | None = None) -> torch.Tensor:
    """1 - SSIM(x, I) per image, both (N, 3, H, W) in generator space, SSIM in metric space.

    With `box` (where x may differ from I), only the windows that can see the box are computed
    (`ops.ssim.ssim_where_changed`): same value and gradient, at the cost of the face instead of
    the photo. An attack calling this every step builds `SSIMPenalty` once instead.
    """
    return SSIMPenalty(original, box)(x)


class SSIMPenalty(torch.nn.Module):
    """`ssim_penalty` against one original, for every step of an attack: the original's window
    statistics are computed once (`ops.ssim.SSIMAgainst`), which spares 2 of the 5 filtered
    statistics per step."""

    def __init__(self, original: torch.Tensor, box: Box | None = None):
        super().__init__()
        region = None if box is None else (box.top, box.left, box.bottom, box.right)
        self.against = SSIMAgainst((original + 1) / 2, region)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.against((x + 1) / 2)
