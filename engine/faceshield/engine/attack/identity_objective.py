"""The identity term: make each deepfake fail a face check as the person, keep the photo passing it.

For one face of one image (its landmarks and the person's descriptor `p` come from the original,
`identity_check.FaceIdentity`), a victim g and a target t, the forger's picture is the victim's
edit of the face crop pasted back over the face box of the photo it was made from:

    E_{g,t}(x) = paste(G_g(T(crop(x)), c_t), box) over x

and a payment system compares the recogniser's descriptor of its aligned chip with `p`. The term
the attack ascends, per edit with an identity to break (the clean edit E(I) still within 0.6 of
the person), is

    w_id * min(|F(chip(E_{g,t}(x))) - p|, cap)

with the chip cut by the original's landmarks and jittered each step (about +-2 px and +-3 %,
since the judge's own alignment of the edit will differ a little), and T the step's transforms
(the robust stage's JPEG and resize). An edit with no identity to break (its clean edit is
already far from the person: a strong style) keeps the output-MSE term of `objective.py`. Once
per image, the keep penalty subtracts w_keep * |F(chip(x)) - p|: the protected photo must still
be its owner. F is dlib's face-recognition ResNet as a PyTorch module (`models.recogniser`),
the same network the judge runs.

This is the issue's measured recipe (loss = d(edit, person) - 2 d(photo, person) on the
differentiable aligned chip); optimised on a plain resize instead of the aligned chip, the same
attack did not move the judge (0 of 6 faces): it must see what the judge sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..ops.chip import aligned_chip, chip_geometry
from .identity_check import CHIP_SIZE, SAME_PERSON, FaceIdentity
from .objective import transformed_outputs

CAP = 1.0  # no gain in pushing one edit further than this: the others need the budget
JITTER_PX, JITTER_SCALE = 2.0, 0.03


class IdentityTerm:
    """The identity objective of one `protect` call: per image, its faces' chip geometries and
    person descriptors; per victim and target, whether the clean edit has an identity to break."""

    def __init__(self, recogniser: torch.nn.Module, faces: dict[int, list[FaceIdentity]], config, seed: int = 0):
        self.recogniser = recogniser
        self.config = config
        self.faces = faces  # caller index -> one FaceIdentity per face box
        self.geometry = {
            i: [None if f.landmarks is None else chip_geometry(f.landmarks) for f in fs] for i, fs in faces.items()
        }
        self.person: dict[int, list[torch.Tensor | None]] = {}
        self.breakable: dict[tuple[int, str], torch.Tensor] = {}  # (image, victim) -> (B, T) bool
        self.generator = torch.Generator().manual_seed(seed)

    # -- set-up ------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, groups: Sequence, victims: Sequence, generate: Callable) -> None:
        """The person's descriptor per face (torch recogniser on the original's chip) and, per
        victim and target, whether its clean edit is still the person (so has an identity to break)."""
        for g in groups:
            for k, i in enumerate(g.index):
                self.person[i] = [
                    None if geo is None else self.describe(g.original[k : k + 1], [geo])[0] for geo in self.geometry[i]
                ]
            for v in victims:
                refs = g.refs[v.name]  # (B * n, T, 3, R, R) clean edits, box-major
                for k, i in enumerate(g.index):
                    rows = []
                    for b, box in enumerate(g.boxes):
                        p, geo = self.person[i][b], self.geometry[i][b]
                        if p is None:
                            rows.append(torch.zeros(refs.shape[1], dtype=torch.bool))
                            continue
                        edits = paste(g.original[k : k + 1].expand(refs.shape[1], -1, -1, -1), box, refs[b * g.n + k])
                        d = (self.describe(edits, [geo] * refs.shape[1]) - p).norm(dim=1)
                        rows.append((d < SAME_PERSON).cpu())
                    self.breakable[(i, v.name)] = torch.stack(rows)

    def describe(self, images: torch.Tensor, geometries: Sequence, jitter: tuple | None = None) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 128): the recogniser's descriptor of each aligned chip."""
        chips = aligned_chip((images + 1) * 127.5, list(geometries), CHIP_SIZE, jitter)
        return self.recogniser(chips.float())

    # -- per step ----------------------------------------------------------------------------
    def terms(self, victim, generator, inputs, labels, refs, transforms, parts, xs, cols) -> torch.Tensor:
        """(views, T) terms to ascend for one victim, averaged over the step's transforms: the
        capped identity distance for edits with an identity to break, output MSE otherwise."""
        out = transformed_outputs(generator, inputs, labels, transforms)  # (F, V, T, 3, R, R)
        nf = out.shape[0]
        mse = (out - refs[None]).pow(2).mean(dim=(3, 4, 5)).mean(dim=0)  # (V, T)
        terms = mse.clone()
        row = 0
        for k, g, r in parts:
            for b, box in enumerate(g.boxes):
                for j in r:
                    i = g.index[j]
                    view = row + b * len(r) + r.index(j)
                    mask = self.breakable.get((i, victim.name))
                    geo, p = self.geometry[i][b], self.person[i][b]
                    if mask is None or p is None:
                        continue
                    wanted = mask[b] if cols is None else mask[b][cols]
                    if not bool(wanted.any()):
                        continue
                    sel = torch.nonzero(wanted).flatten().tolist()
                    edits = out[:, view, sel].reshape(nf * len(sel), *inputs.shape[1:])
                    photo = xs[k][j : j + 1].expand(edits.shape[0], -1, -1, -1)
                    d = (
                        self.describe(paste(photo, box, edits), [geo] * edits.shape[0], self.jitter(edits.shape[0])) - p
                    ).norm(dim=1)
                    ident = self.config.identity_weight * d.clamp(max=CAP).reshape(nf, len(sel)).mean(dim=0)
                    terms[view, sel] = ident
            row += len(g.boxes) * len(r)
        return terms

    def keep_penalty(self, g, x: torch.Tensor) -> torch.Tensor:
        """(n,) w_keep times the mean over an image's faces of the photo's own distance from the person."""
        out = []
        for k, i in enumerate(g.index):
            ds = [
                (self.describe(x[k : k + 1], [geo]) - p).norm(dim=1)[0]
                for geo, p in zip(self.geometry[i], self.person[i], strict=True)
                if p is not None
            ]
            out.append(torch.stack(ds).mean() if ds else x.new_zeros(()))
        return self.config.keep_weight * torch.stack(out)

    def jitter(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u = torch.rand(3, n, generator=self.generator) * 2 - 1
        return u[0] * JITTER_PX, u[1] * JITTER_PX, 1 + u[2] * JITTER_SCALE


def paste(photo: torch.Tensor, box, edits: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) photos with (N, 3, R, R) edits resized over the face box (differentiable in both)."""
    height, width = photo.shape[-2:]
    patch = F.interpolate(edits, size=(box.height, box.width), mode="bilinear", align_corners=False)
    placed = F.pad(patch, (box.left, width - box.right, box.top, height - box.bottom))
    inside = F.pad(torch.ones_like(patch[:, :1]), (box.left, width - box.right, box.top, height - box.bottom))
    return photo * (1 - inside) + placed


@torch.no_grad()
def measure_identity(
    term: IdentityTerm, group, x_q: torch.Tensor, victims: Sequence, generate: Callable, margin: float
) -> list[dict[str, tuple[bool, float]]]:
    """Inside the loop, on the 8-bit rounding x_q: per image and victim, (every edit with an
    identity to break is at least SAME_PERSON * (1 + margin) from the person and the photo is
    still kept; the smallest such distance, which the stall rule follows). The torch recogniser
    and chip stand in for dlib here; the verdict is dlib's own (`identity_check`)."""
    from .identity_check import KEPT

    need = SAME_PERSON * (1.0 + margin)
    out: list[dict[str, tuple[bool, float]]] = [{} for _ in range(group.n)]
    for k, i in enumerate(group.index):
        kept = all(
            float((term.describe(x_q[k : k + 1], [geo]) - p).norm()) < KEPT
            for geo, p in zip(term.geometry[i], term.person[i], strict=True)
            if p is not None
        )
        for v in victims:
            labels = group.labels[v.name][k : k + 1]
            worst = float("inf")
            for b, box in enumerate(group.boxes):
                mask, p, geo = term.breakable.get((i, v.name)), term.person[i][b], term.geometry[i][b]
                if mask is None or p is None or not bool(mask[b].any()):
                    continue
                sel = torch.nonzero(mask[b]).flatten().tolist()
                edits = generate(v, group.crops(x_q[k : k + 1], v.resolution)[b : b + 1], labels)[0, sel]
                edits = ((edits.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1  # the 8-bit output a forger gets
                photo = x_q[k : k + 1].expand(len(sel), -1, -1, -1)
                d = (term.describe(paste(photo, box, edits), [geo] * len(sel)) - p).norm(dim=1)
                worst = min(worst, float(d.min()))
            hit = kept and worst >= need
            out[k][v.name] = (hit, worst if worst != float("inf") else need)
    return out
