"""Union-saliency protection (Algorithm 1): the loop that composes the stages.

    1. references   y_{g,t} = G_g(I, c_t) for every victim g and target t     (this file)
    2-4. masks      M_sm (TRACER), M_ma (Eq. 2), M_un (Eq. 3), the step mask  attack/masks.py
    5. objective    J(x) with its SSIM penalty                                attack/objective.py
    6. start        uniform draw, refined by the noise generator (Eqs. 5-8)   attack/noise_generator.py
    7. I-FGSM       masked sign steps, projected (Eq. 16)                     attack/step.py
                    on the transforms each step draws                         attack/blurs.py
                    in rounds, with early stop, under a `Policy`              attack/verify.py
    8. outputs      G(x_k, c_t), masks, the start used                        (this file)

`Protector` runs every configuration on a batch: N images of any size, each with one or more
face boxes, against one or more victims with their own resolutions and targets. Images that
share a size and boxes move through each stage as one tensor (`attack/batch.py`).

    >>> protector = Protector(victims, saliency=tracer)
    >>> result = protector.protect(images, labels, AttackConfig.for_method("union-saliency"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..config import FIXED, AttackConfig, Policy
from ..errors import InvalidInputError
from ..models.victims import Victim
from ..ops.geometry import Box, resolve_box
from .batch import Cancellation, Group, drop, make_groups
from .blurs import TransformSchedule
from .masks import across_victims, box_mask, manipulation_mask, paste_views, to_size, union_mask
from .noise_generator import apply_start, initial_tau, noise_step
from .objective import SSIMPenalty, bounding_box, disruption_terms
from .step import ifgsm_step
from .verify import disrupted, margin_threshold

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BoxArg = tuple[int, int, int, int] | Sequence[tuple[int, int, int, int]] | None
FIRST_CHECK = 2  # steps before early stop first measures an image (one step seldom disrupts anything)


class SaliencyModel(Protocol):
    """Anything that maps (N, 3, h, w) images in [0, 1] to (N, 1, h', w') saliency in [0, 1]."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass
class VictimResult:
    """One victim's side of a protection, per view (image i's box b is row `views.index((i, b))`).

    references / outputs: (V, T, 3, R, R) G(I, c_t) and G(x_k, c_t), no blur; generator_inputs:
    (V, 3, R, R) the original face crop; manipulation_mask: (V, 1, R, R) where computed.
    """

    name: str
    targets: list[str]
    references: torch.Tensor
    generator_inputs: torch.Tensor
    outputs: torch.Tensor | None = None
    manipulation_mask: torch.Tensor | None = None


@dataclass
class ProtectionResult:
    """What one `Protector.protect` call produced, in the caller's batch order.

    protected: per image (3, H, W) in [-1, 1], None where the item was cancelled.
    views: (image, box index) per view row; victims: per attacked victim, its `VictimResult`.
    saliency_mask / manipulation_mask / union_mask: (V, 1, R_m, R_m) at the masks' resolution
    (the largest victim resolution) where computed, else None.
    start: per image, the perturbation x_0 - I actually used (for reproducing a run).
    image_steps: generator forward+backward passes spent, counted per view, target and transform;
    check_passes: forward-only generator passes spent measuring disruption in the loop.
    steps / rounds: per image, the I-FGSM steps and rounds it ran; passes: per image, generator
    passes spent (forward+backward per view, target and transform, and the checks' forwards);
    verified: per image, whether
    the in-loop check found it disrupted with margin (None where the policy never checked).
    """

    protected: list[torch.Tensor | None]
    views: list[tuple[int, int]]
    victims: list[VictimResult]
    saliency_mask: torch.Tensor | None
    manipulation_mask: torch.Tensor | None
    union_mask: torch.Tensor | None
    start: list[torch.Tensor | None]
    cancelled: list[bool]
    boxes: list[tuple[Box, ...]] = field(default_factory=list)
    image_steps: int = 0
    check_passes: int = 0
    steps: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    verified: list[bool | None] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def _only(self) -> VictimResult:
        if len(self.victims) != 1:
            raise AttributeError("this result holds several victims; read .victims")
        return self.victims[0]

    # One victim's tensors, for single-victim callers (the paper's setting).
    @property
    def references(self) -> torch.Tensor:
        return self._only().references

    @property
    def outputs(self) -> torch.Tensor | None:
        return self._only().outputs

    @property
    def generator_inputs(self) -> torch.Tensor:
        return self._only().generator_inputs


class Protector:
    """Runs Algorithm 1 against one or more victims.

    Args:
        victims: the generators to disrupt (`models.victims.Victim`).
        saliency: TRACER (or any `SaliencyModel`) for configurations that need M_sm and were
            given no caller mask.
        device: where the generators and the loop run.
        autocast_dtype: e.g. torch.bfloat16 to run the generators under autocast (GPU speed);
            None keeps float32.
    """

    def __init__(
        self,
        victims: Sequence[Victim],
        saliency: SaliencyModel | None = None,
        device: str | torch.device = "cpu",
        autocast_dtype: torch.dtype | None = None,
    ):
        self.victims = list(victims)
        self.saliency = saliency
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype

    @classmethod
    def for_generator(cls, generator, attributes: Sequence[str], resolution: int, **kwargs) -> Protector:
        """A protector against one StarGAN G(x, c) with these attributes at this resolution."""
        return cls([Victim("stargan", "stargan", generator, int(resolution), list(attributes))], **kwargs)

    # -- generators ------------------------------------------------------------------------
    def run(self, victim: Victim, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return victim.generator(x, c)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return victim.generator(x, c).float()

    @torch.no_grad()
    def generate(self, victim: Victim, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G for every target: (V, 3, R, R), (V, T, c) -> (V, T, 3, R, R)."""
        v, t = labels.shape[:2]
        batch = inputs[:, None].expand(v, t, *inputs.shape[1:]).reshape(v * t, *inputs.shape[1:])
        return self.run(victim, batch, labels.reshape(v * t, -1)).reshape(v, t, *inputs.shape[1:])

    # -- main entry ------------------------------------------------------------------------
    def protect(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        labels: torch.Tensor | dict[str, torch.Tensor],
        config: AttackConfig,
        boxes: Sequence[BoxArg] | None = None,
        saliency_masks: Sequence[torch.Tensor | None] | None = None,
        seeds: Sequence[int] | None = None,
        cancelled: Callable[[], Sequence[bool]] | None = None,
        compute_outputs: bool = True,
        policy: Policy = FIXED,
        progress: Progress | None = None,
    ) -> ProtectionResult:
        """Protect a batch.

        Args:
            images: (N, 3, H, W) or N tensors (3, H_i, W_i), generator space [-1, 1].
            labels: victim name -> (N, T, c_dim) target labels (`Victim.labels`); victims without
                an entry are not attacked. A tensor stands for the only victim's.
            config: the attack configuration.
            boxes: per image, None (the centre square), one face box (left, top, right, bottom)
                or several (every face region is protected by the one perturbation).
            saliency_masks: per image caller M_sm at the image's own size, (H, W) or (1, H, W),
                values in [0, 1], or None (the saliency model computes it).
            seeds: per image seed of the random start (default: config.seed for every image).
            cancelled: polled once per step; returns one flag per image. Flagged images leave
                the batch at once and come back as None.
            compute_outputs: also run G on the result (the output-side metrics need it).
            policy: `config.FIXED` (the paper), or rounds / early stop (`config.Policy`).
            progress: called as (stage, done, total) after each step.
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        images = [im.to(self.device, torch.float32) for im in images]
        n = len(images)
        if n == 0:
            raise InvalidInputError("images", "the batch is empty")
        labels = self._check_labels(labels, n)
        _check_images(images)
        seeds = list(seeds) if seeds is not None else [config.seed] * n
        masks_in = list(saliency_masks) if saliency_masks is not None else [None] * n
        box_args = list(boxes) if boxes is not None else [None] * n
        if not (len(box_args) == len(seeds) == len(masks_in) == n):
            raise InvalidInputError("images", "boxes, seeds and saliency masks must have one entry per image")
        resolved = [_resolve_boxes(b, im) for b, im in zip(box_args, images, strict=True)]
        attacked = [v for v in self.victims if v.name in labels]
        if config.stages.blur == "robust":
            from ..ops.transforms import check_robust_side

            for v in attacked:
                check_robust_side(v.resolution, v.name)
        groups = make_groups(images, resolved, seeds, labels)
        given = {i: m for i, m in enumerate(masks_in) if m is not None}

        # 1. Reference outputs y_t = G(I, c_t), no blur.
        for g in groups:
            for v in attacked:
                g.refs[v.name] = self.generate(v, g.crops(g.original, v.resolution), _per_view(g, g.labels[v.name]))
        timings["references"] = time.perf_counter() - t0

        # 2-4. Masks at the masks' resolution, the step mask at the image's.
        t1 = time.perf_counter()
        r_m = max(v.resolution for v in attacked)
        view_masks = {g_i: self._masks(g, config, attacked, r_m, given) for g_i, g in enumerate(groups)}
        timings["masks"] = time.perf_counter() - t1

        schedule = TransformSchedule(config)
        cancel = Cancellation(cancelled, n)
        counts = {"image_steps": 0, "checks": 0}
        threshold = margin_threshold(policy.margin)
        final: dict[int, torch.Tensor] = {}
        steps_run, rounds_run, passes = [0] * n, [0] * n, [0] * n
        next_check, check_gap = [FIRST_CHECK] * n, [1] * n  # early stop's measuring schedule, per image
        verified: list[bool | None] = [None] * n

        def objective_grad(active: list[Group], points: list[torch.Tensor], gamma: float):
            transforms = schedule.next()
            xs = [p.detach().requires_grad_(True) for p in points]
            per_image: list[torch.Tensor] = [torch.zeros(g.n, device=self.device) for g in active]
            worst = [torch.full((g.n,), float("inf"), device=self.device) for g in active]
            for v in attacked:
                inputs = torch.cat([g.crops(x, v.resolution) for g, x in zip(active, xs, strict=True)])
                labs = torch.cat([_per_view(g, g.labels[v.name]) for g in active])
                refs = torch.cat([g.refs[v.name] for g in active])
                terms = disruption_terms(lambda a, c, v=v: self.run(v, a, c), inputs, labs, refs, transforms)
                counts["image_steps"] += terms.numel() * len(transforms)
                for g in active:
                    for i in g.index:  # this image's views x targets x transforms
                        passes[i] += len(g.boxes) * g.labels[v.name].shape[1] * len(transforms)
                for k, t in enumerate(terms.split([len(g.boxes) * g.n for g in active])):
                    g = active[k]
                    per_image[k] = per_image[k] + g.per_image(t.mean(dim=1)) / len(attacked)
                    low = t.detach().reshape(len(g.boxes), g.n, -1).amin(dim=(0, 2))
                    worst[k] = torch.minimum(worst[k], low)
            total = sum(p.sum() for p in per_image)
            if config.stages.ssim and gamma > 0:
                for g, x in zip(active, xs, strict=True):
                    if g.ssim is None:
                        g.ssim = SSIMPenalty(g.original, bounding_box(g.boxes))
                    total = total - gamma * g.ssim(x).sum()
            return list(torch.autograd.grad(total, xs)), worst

        def settle(active: list[Group], candidates: dict[int, list[int]] | None) -> list[Group]:
            """Measure the candidate images of each group (all where None); those disrupted with
            margin leave the loop with their x."""
            out = []
            for gi, g in enumerate(active):
                rows = list(range(g.n)) if candidates is None else candidates.get(gi, [])
                if not rows:
                    out.append(g)
                    continue
                sub = g if len(rows) == g.n else g.keep(rows)
                assert sub.x is not None and g.x is not None
                targets = sum(sub.labels[v.name].shape[1] for v in attacked)
                cost = len(sub.boxes) * targets * (1 + 2 * len(policy.verify_after))
                counts["checks"] += sub.n * cost
                for i in sub.index:
                    passes[i] += cost
                ok = disrupted(sub, sub.x, config.epsilon, threshold, attacked, self.generate, policy.verify_after)
                done = set()
                for j, row in enumerate(rows):
                    i = g.index[row]
                    verified[i] = ok[j]
                    if ok[j]:
                        final[i] = g.x[row].detach()
                        done.add(row)
                    else:  # measure this image again only after twice as many steps
                        next_check[i] = steps_run[i] + check_gap[i]
                        check_gap[i] *= 2
                out += drop([g], lambda g_, done=done: [row for row in range(g_.n) if row not in done])
            return out

        # 6. Start: none, uniform, or the noise generator (all confined to the step mask).
        t2 = time.perf_counter()
        eps = config.epsilon
        for g in groups:
            g.x = initial_tau(config.stages.start, g.original, g.seeds, eps)  # tau until applied below
        active = cancel(groups)
        if config.stages.start == "noise-generator":
            for k in range(config.noise_steps):
                grads, _ = objective_grad(active, [g.original + g.x for g in active], config.gamma)
                for g, grad in zip(active, grads, strict=True):
                    g.x = noise_step(g.x, grad, config.noise_lr, eps)
                active = cancel(active)
                if progress:
                    progress("noise generator", k + 1, config.noise_steps)
        starts: dict[int, torch.Tensor] = {}
        for g in active:
            g.x = apply_start(g.original, g.x, g.mask, clip=config.stages.start == "noise-generator")
            for k, i in enumerate(g.index):
                starts[i] = (g.x[k] - g.original[k]).detach()
        timings["start"] = time.perf_counter() - t2

        # 7. Masked I-FGSM, in rounds under the policy.
        t3 = time.perf_counter()
        plan = plan_rounds(config.steps, policy)
        total_steps, done_steps = sum(k for k, _ in plan), 0
        for r, (k, widen) in enumerate(plan):
            if not active:
                break
            gamma = config.gamma * 0.5**r
            if widen:
                for g in active:
                    g.mask = box_mask(g.boxes, g.n, *g.original.shape[-2:], g.original)
            for _ in range(k):
                if not active:
                    break
                grads, worst = objective_grad(active, [g.x for g in active], gamma)
                for g, grad in zip(active, grads, strict=True):
                    g.x = ifgsm_step(g.x, grad, g.mask, g.original, config.step_size, eps)
                    for i in g.index:
                        steps_run[i] += 1
                        rounds_run[i] = r + 1
                done_steps += 1
                if policy.early_stop:
                    # Measuring costs a forward pass per view and target, so an image is measured
                    # only when its objective's terms (MSE of G on the transformed x, the step's own
                    # by-product) are above the threshold, and not again until twice as many steps
                    # have passed since its last miss: a few checks a round at most. Without a
                    # transform the terms are the very MSE the check measures, one step late; with
                    # a blur they include the blur's own effect on G, which is why the schedule
                    # bounds the checks.
                    likely = {
                        gi: [
                            row
                            for row in range(g.n)
                            if float(w[row]) > threshold and steps_run[g.index[row]] >= next_check[g.index[row]]
                        ]
                        for gi, (g, w) in enumerate(zip(active, worst, strict=True))
                    }
                    if any(likely.values()):
                        active = settle(active, likely)
                active = cancel(active)
                if progress:
                    progress(f"round {r + 1}" if len(plan) > 1 else "I-FGSM", done_steps, total_steps)
            if policy.kind == "ensure" and active and r < len(plan) - 1:
                active = settle(active, None)
        if policy.verify_after and active:
            active = settle(active, None)  # the verdict after processing, for what is left
        for g in active:
            for k, i in enumerate(g.index):
                final[i] = g.x[k].detach()
        timings["steps"] = time.perf_counter() - t3

        # 8. Outputs, back in the caller's order.
        protected: list[torch.Tensor | None] = [None if cancel.flags[i] else final.get(i) for i in range(n)]
        views = [(i, b) for i in range(n) for b in range(len(resolved[i]))]
        where = {
            (g.index[k], b): (gi, b * g.n + k)
            for gi, g in enumerate(groups)
            for b in range(len(g.boxes))
            for k in range(g.n)
        }

        def gather(per_group: Callable[[int], torch.Tensor | None]) -> torch.Tensor | None:
            parts = [per_group(gi) for gi in range(len(groups))]
            if any(p is None for p in parts):
                return None
            return torch.stack([parts[where[view][0]][where[view][1]] for view in views])  # type: ignore[index]

        results = []
        t4 = time.perf_counter()
        for v in attacked:
            refs = gather(lambda gi, v=v: groups[gi].refs[v.name])
            inputs = gather(lambda gi, v=v: groups[gi].crops(groups[gi].original, v.resolution))
            man = gather(lambda gi, v=v: view_masks[gi].get(f"manipulation:{v.name}"))
            res = VictimResult(v.name, [], refs, inputs, manipulation_mask=man)  # type: ignore[arg-type]
            if compute_outputs and any(p is not None for p in protected):
                adv = torch.stack(
                    [
                        _crop_view(
                            protected[i] if protected[i] is not None else images[i], resolved[i][b], v.resolution
                        )
                        for i, b in views
                    ]
                )
                res.outputs = self.generate(v, adv, torch.stack([labels[v.name][i] for i, _ in views]))
            results.append(res)
        if compute_outputs:
            timings["outputs"] = time.perf_counter() - t4
        timings["total"] = time.perf_counter() - t0
        return ProtectionResult(
            protected=protected,
            views=views,
            victims=results,
            saliency_mask=gather(lambda gi: view_masks[gi].get("saliency")),
            manipulation_mask=gather(lambda gi: view_masks[gi].get("manipulation")),
            union_mask=gather(lambda gi: view_masks[gi].get("union")),
            start=[starts.get(i) if protected[i] is not None else None for i in range(n)],
            cancelled=list(cancel.flags),
            boxes=resolved,
            image_steps=counts["image_steps"],
            check_passes=counts["checks"],
            steps=steps_run,
            rounds=rounds_run,
            passes=passes,
            verified=verified,
            timings=timings,
        )

    # -- stages ----------------------------------------------------------------------------
    def _check_labels(self, labels: torch.Tensor | dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
        if isinstance(labels, torch.Tensor):
            if len(self.victims) != 1:
                raise InvalidInputError("targets", "several victims: pass labels per victim name")
            labels = {self.victims[0].name: labels}
        known = {v.name: v for v in self.victims}
        out = {}
        for name, lab in labels.items():
            if name not in known:
                raise InvalidInputError("targets", f"unknown victim {name!r}; this protector has {', '.join(known)}")
            lab = lab.to(self.device, torch.float32)
            c_dim = known[name].c_dim
            if lab.ndim != 3 or lab.shape[0] != n or lab.shape[1] == 0 or lab.shape[2] != c_dim:
                raise InvalidInputError(
                    "targets", f"labels of {name} must be (N={n}, T, {c_dim}), got {tuple(lab.shape)}"
                )
            out[name] = lab
        if not out:
            raise InvalidInputError("targets", "no victim to protect against: pass labels for at least one")
        return out

    def _masks(self, g: Group, config: AttackConfig, attacked: list[Victim], r_m: int, given: dict) -> dict:
        """Sets g.mask (n, 1, H, W); returns the per-view masks at r_m for the result."""
        h, w = g.original.shape[-2:]
        kind = config.stages.mask
        if kind == "none":
            g.mask = box_mask(g.boxes, g.n, h, w, g.original)
            return {}
        out: dict[str, torch.Tensor] = {"saliency": self._saliency(g, r_m, given)}
        step = out["saliency"]
        if kind == "union":
            per_victim = []
            for v in attacked:
                m = manipulation_mask(g.refs[v.name], g.crops(g.original, v.resolution), config.manipulation_threshold)
                out[f"manipulation:{v.name}"] = m
                per_victim.append(m)
            out["manipulation"] = across_victims(per_victim, r_m)
            out["union"] = step = union_mask(out["saliency"], out["manipulation"], config.alpha, config.beta)
        g.mask = paste_views(step, g.boxes, g.n, h, w)
        return out

    def _saliency(self, g: Group, size: int, given: dict) -> torch.Tensor:
        """M_sm per view at `size`: the caller's mask (cropped like the image) where given, else
        the saliency model's on the face crop."""
        crops = g.crops(g.original, size)
        out = torch.empty(crops.shape[0], 1, size, size, device=crops.device)
        rows = [(b * g.n + k, i) for b in range(len(g.boxes)) for k, i in enumerate(g.index)]
        need = [row for row, i in rows if i not in given]
        if need:
            if self.saliency is None:
                raise InvalidInputError(
                    "saliency_mask", "this method needs a saliency mask: pass one, or load a saliency model (TRACER)"
                )
            with torch.no_grad():
                s = self.saliency((crops[need] + 1) / 2).to(crops.device, torch.float32)
            out[need] = to_size(s, size)
        shape = tuple(g.original.shape[-2:])
        for row, i in rows:
            if i not in given:
                continue
            m = torch.as_tensor(given[i], dtype=torch.float32, device=crops.device)
            if m.ndim == 2:
                m = m[None]
            if m.ndim != 3 or m.shape[0] != 1 or tuple(m.shape[1:]) != shape:
                raise InvalidInputError(
                    "saliency_mask", f"expected a mask of the image's size {shape}, got {tuple(m.shape)}"
                )
            if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
                raise InvalidInputError("saliency_mask", "values must be finite and lie in [0, 1]")
            out[row] = _crop_view(m, g.boxes[row // g.n], size)
        return out


def plan_rounds(steps: int, policy: Policy) -> list[tuple[int, bool]]:
    """(steps, widen the mask to the face box) per round: one round under FIXED; under ensure,
    rounds of `steps` until the budget is spent, the last (where there is more than one) widened."""
    if policy.kind != "ensure":
        return [(steps, False)]
    rounds, left = [], policy.budget_steps
    while left > 0:
        k = min(steps, left)
        rounds.append(k)
        left -= k
    return [(k, len(rounds) > 1 and r == len(rounds) - 1) for r, k in enumerate(rounds)]


def _per_view(g: Group, labels: torch.Tensor) -> torch.Tensor:
    """(n, T, c) per image -> (B * n, T, c) per view (box-major)."""
    return labels.repeat(len(g.boxes), 1, 1)


def _crop_view(x: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    from ..ops.geometry import crop_resize

    return crop_resize(x[None], box, size)[0]


def _resolve_boxes(arg: BoxArg, image: torch.Tensor) -> tuple[Box, ...]:
    h, w = image.shape[1], image.shape[2]
    if arg is None:
        return (resolve_box(None, h, w),)
    items = list(arg)
    if items and all(isinstance(v, (int, float)) or hasattr(v, "__index__") for v in items):
        return (resolve_box(tuple(items), h, w),)  # type: ignore[arg-type]
    if not items:
        raise InvalidInputError("face_box", "an empty list of face boxes")
    return tuple(resolve_box(b, h, w) for b in items)


def _check_images(images: list[torch.Tensor]) -> None:
    for i, im in enumerate(images):
        if im.ndim != 3 or im.shape[0] != 3:
            raise InvalidInputError("image", f"image {i} must be (3, H, W), got {tuple(im.shape)}")
        if not torch.isfinite(im).all():
            raise InvalidInputError("image", f"image {i} holds non-finite values")
