"""Is the edit disrupted? Measured inside the loop, on the 8-bit image the caller would receive.

A target of a victim is disrupted for an image when MSE(G(x_q, c_t), G(I, c_t)) > threshold on
every face region of the image, x_q being x rounded to 8 bits inside the epsilon ball
(`io.images.quantize_tensor`, what `FaceShieldEngine` returns). `early stop` and `ensure` use
the threshold 0.05 * (1 + margin), so that the final verdict (0.05) is not a coin toss; with
`verify_after`, the edit must also stay disrupted after real processing T of the whole photo,
G(T(x_q)) against G(T(I)), as `evaluation.robustness` measures it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..io.images import quantize_tensor, to_tensor
from ..io.processing import processing as named_processing
from ..metrics import SUCCESS_MSE
from ..models.victims import Victim
from .batch import Group

RunFn = Callable[
    [Victim, torch.Tensor, torch.Tensor], torch.Tensor
]  # G for every target: (V,3,R,R),(V,T,c) -> (V,T,3,R,R)


def margin_threshold(margin: float) -> float:
    return SUCCESS_MSE * (1.0 + margin)


@torch.no_grad()
def worst_mse(
    group: Group, x: torch.Tensor, victims: Sequence[Victim], run: RunFn, refs: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """Victim name -> (n,) per image: the smallest output MSE over its face regions and targets,
    for x as given (the least disrupted edit decides)."""
    refs = group.refs if refs is None else refs
    out = {}
    for v in victims:
        crops = group.crops(x, v.resolution)
        labels = group.labels[v.name].repeat(len(group.boxes), 1, 1)
        mse = (run(v, crops, labels) - refs[v.name]).pow(2).mean(dim=(2, 3, 4))  # (B * n, T)
        out[v.name] = mse.reshape(len(group.boxes), group.n, -1).amin(dim=(0, 2))
    return out


def rounded(group: Group, x: torch.Tensor, epsilon: float) -> torch.Tensor:
    return quantize_tensor(x, group.original, epsilon)


@torch.no_grad()
def worst_mse_after(
    group: Group, x_q: torch.Tensor, processing: str, victims: Sequence[Victim], run: RunFn
) -> dict[str, torch.Tensor]:
    """`worst_mse` after real processing of the whole photo, against G(T(I)) (not G(I): the
    processing's own effect on the victim is not protection)."""
    transform = named_processing(processing)
    device = x_q.device

    def apply(batch: torch.Tensor) -> torch.Tensor:
        out = []
        for img in batch:
            u8 = ((img.detach().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            out.append(to_tensor(np.ascontiguousarray(transform(u8))))
        return torch.stack(out).to(device)

    processed_original = apply(group.original)
    refs = {}
    for v in victims:
        crops = group.crops(processed_original, v.resolution)
        refs[v.name] = run(v, crops, group.labels[v.name].repeat(len(group.boxes), 1, 1))
    return worst_mse(group, apply(x_q), victims, run, refs)


def disrupted(
    group: Group,
    x: torch.Tensor,
    epsilon: float,
    threshold: float,
    victims: Sequence[Victim],
    run: RunFn,
    after: Sequence[str] = (),
) -> list[dict[str, tuple[bool, float]]]:
    """Per image of the group, per victim: (every target disrupted above `threshold` on the 8-bit
    rounding of x, plainly and after each processing in `after`; the smallest output MSE seen,
    which the stall rule follows)."""
    x_q = rounded(group, x, epsilon)
    worst = worst_mse(group, x_q, victims, run)
    for processing in after:
        for name, m in worst_mse_after(group, x_q, processing, victims, run).items():
            worst[name] = torch.minimum(worst[name], m)
    return [{name: (bool(m[k] > threshold), float(m[k])) for name, m in worst.items()} for k in range(group.n)]
