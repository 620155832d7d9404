"""The objective J(x) the protection ascends (Algorithm 1's loss, with the paper's sign fixed).

    J(x) = mean_g mean_t MSE(G_g(T(x_g), c_t), y_{g,t})  -  gamma * (1 - SSIM(x, I))

over victims g (each seeing the face region x_g at its own resolution), their targets t, and the
transforms T a step draws (`attack.blurs`); y_{g,t} = G_g(I_g, c_t) is the clean edit. The paper
writes L = L1 + gamma * L_ssim and ascends it, which would reward distortion: the SSIM term is a
distortion penalty, so it is subtracted. SSIM (Gaussian window 11, sigma 1.5) is computed in
metric space [0, 1] at the image's own resolution, counted once whatever the victims.

Every term is per image, so an image's gradient does not depend on the rest of its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

from ..ops.geometry import Box
from ..ops.ssim import SSIMAgainst

GeneratorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TransformFn = Callable[[torch.Tensor], torch.Tensor] | None


def disruption_terms(
    generator: GeneratorFn,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    references: torch.Tensor,
    transforms: Sequence[TransformFn],
) -> torch.Tensor:
    """MSE(G(T(x), c_t), y_t) per view and target, averaged over the transforms.

    inputs (V, 3, R, R); labels (V, T, c); references (V, T, 3, R, R); returns (V, T).
    Every transform x target x view goes through the generator as one batch.
    """
    out = transformed_outputs(generator, inputs, labels, transforms)
    return (out - references[None]).pow(2).mean(dim=(3, 4, 5)).mean(dim=0)


def transformed_outputs(
    generator: GeneratorFn, inputs: torch.Tensor, labels: torch.Tensor, transforms: Sequence[TransformFn]
) -> torch.Tensor:
    """G(T(x), c_t) for every transform, view and target as one generator batch:
    inputs (V, 3, R, R), labels (V, T, c) -> (F, V, T, 3, R, R)."""
    v, t = labels.shape[:2]
    views = torch.stack([inputs if f is None else f(inputs) for f in transforms])  # (F, V, 3, R, R)
    nf = views.shape[0]
    batch = views[:, :, None].expand(nf, v, t, *inputs.shape[1:]).reshape(nf * v * t, *inputs.shape[1:])
    c = labels[None].expand(nf, v, t, labels.shape[-1]).reshape(nf * v * t, labels.shape[-1])
    return generator(batch, c).reshape(nf, v, t, *inputs.shape[1:])


def disruption_loss(
    generator: GeneratorFn,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    references: torch.Tensor,
    blurs: Sequence[TransformFn],
) -> torch.Tensor:
    """Mean over transforms and targets of MSE(G(T(x), c_t), y_t), per view: (V,)."""
    return disruption_terms(generator, inputs, labels, references, blurs).mean(dim=1)


def ssim_penalty(x: torch.Tensor, original: torch.Tensor, box: Box | None = None) -> torch.Tensor:
    """1 - SSIM(x, I) per image, both (N, 3, H, W) in generator space, SSIM in metric space.

    With `box` (where x may differ from I), only the windows that can see the box are computed
    (`ops.ssim.ssim_where_changed`): same value and gradient, at the cost of the face instead of
    the photo. An attack calling this every step builds `SSIMPenalty` once instead.
    """
    return SSIMPenalty(original, box)(x)


def bounding_box(boxes: Sequence[Box]) -> Box:
    """The smallest box holding every face region (where x may differ from I)."""
    return Box(
        min(b.left for b in boxes), min(b.top for b in boxes), max(b.right for b in boxes), max(b.bottom for b in boxes)
    )


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


def gradients(
    active: Sequence,
    points: Sequence[torch.Tensor],
    transforms: Sequence[TransformFn],
    gamma: float,
    victims: Sequence,
    run: Callable,
    tally,
    with_ssim: bool,
    per_step: int = 0,
    identity=None,
    features=None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """grad_x J at `points` (one (n, 3, H, W) tensor per group of `active`), and per group the
    smallest disruption term of each image over its victims, faces and targets (early stop's hint).

    J of an image is the mean over the victims still in its J (`tally.pending`) of their mean over
    faces and targets, minus gamma times its SSIM penalty (counted once). Each victim sees every
    group's face crops at its own resolution in one generator batch. With `features`
    (`attack.features.FeatureTerm`), a victim it knows adds its feature term to J, never to the
    early-stop hint.
    """
    xs = [p.detach().requires_grad_(True) for p in points]
    device = xs[0].device
    per_image = [torch.zeros(g.n, device=device) for g in active]
    worst = [torch.full((g.n,), float("inf"), device=device) for g in active]
    for v in victims:
        rows = [[k for k in range(g.n) if v.name in tally.pending[g.index[k]]] for g in active]
        parts = [(k, g, r) for k, (g, r) in enumerate(zip(active, rows, strict=True)) if r]
        if not parts:
            continue
        inputs = torch.cat([g.crops(select(xs[k], r, g.n), v.resolution) for k, g, r in parts])
        labs = torch.cat([per_view(g, select(g.labels[v.name], r, g.n)) for _, g, r in parts])
        refs = torch.cat([select(g.refs[v.name], g.view_rows(r), len(g.boxes) * g.n) for _, g, r in parts])
        cols = turn(labs.shape[1], per_step, tally.draws)
        if cols is not None:
            labs, refs = labs[:, cols], refs[:, cols]
        if identity is not None:
            terms = identity.terms(v, partial(run, v), inputs, labs, refs, transforms, parts, xs, cols)
        else:
            terms = disruption_terms(partial(run, v), inputs, labs, refs, transforms)
        tally.image_steps += terms.numel() * len(transforms)
        sizes = [len(g.boxes) * len(r) for _, g, r in parts]
        feat = None
        if features is not None and v.name in features:
            clean = torch.cat([g.crops(select(g.original, r, g.n), v.resolution) for _, g, r in parts])
            feat = features.terms(v.name, inputs, clean, labs).split(sizes)
        for n_part, ((k, g, r), t) in enumerate(zip(parts, terms.split(sizes), strict=True)):
            t = t.reshape(len(g.boxes), len(r), -1)  # face, image, target
            sel = torch.tensor(r, device=device)
            share = torch.tensor([1.0 / len(tally.pending[g.index[j]]) for j in r], device=device)
            gain = t.mean(dim=(0, 2))
            if feat is not None:
                gain = gain + feat[n_part].reshape(len(g.boxes), len(r)).mean(dim=0)
            per_image[k] = per_image[k].index_add(0, sel, gain * share)
            worst[k][sel] = torch.minimum(worst[k][sel], t.detach().amin(dim=(0, 2)))
            for j in r:  # this image's faces x targets x transforms
                tally.passes[g.index[j]] += len(g.boxes) * t.shape[-1] * len(transforms)
    tally.draws += 1
    total = sum((p.sum() for p in per_image), torch.zeros((), device=device))  # a tensor even to mypy
    if identity is not None:
        total = total - sum(identity.keep_penalty(g, x).sum() for g, x in zip(active, xs, strict=True))
    if with_ssim and gamma > 0:
        for g, x in zip(active, xs, strict=True):
            if g.ssim is None:
                g.ssim = SSIMPenalty(g.original, bounding_box(g.boxes))
            total = total - gamma * g.ssim(x).sum()
    return list(torch.autograd.grad(total, xs)), worst


def turn(total: int, per_step: int, draw: int) -> list[int] | None:
    """The target columns this draw takes: `per_step` of `total` in turn; None for all."""
    if per_step <= 0 or per_step >= total:
        return None
    return [(draw * per_step + j) % total for j in range(per_step)]


def per_view(g, labels: torch.Tensor) -> torch.Tensor:
    """(n, T, c) per image -> (B * n, T, c) per view (box-major)."""
    return labels.repeat(len(g.boxes), 1, 1)


def select(t: torch.Tensor, rows, size: int) -> torch.Tensor:
    """t[rows]; t itself when rows is all of it (no copy, the same autograd graph)."""
    n = rows.numel() if isinstance(rows, torch.Tensor) else len(rows)
    if n == size:
        return t
    return t[torch.as_tensor(rows, device=t.device)]
