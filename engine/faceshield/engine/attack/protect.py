"""Union-saliency protection (Algorithm 1): the loop that composes the stages.

    1. references   y_{g,t} = G_g(I, c_t) for every victim g and target t     (this file)
    2-4. masks      M_sm (TRACER), M_ma (Eq. 2), M_un (Eq. 3), the step mask  attack/masks.py
    5. objective    J(x) with its SSIM penalty                                attack/objective.py
    6. start        uniform draw, refined by the noise generator (Eqs. 5-8)   attack/noise_generator.py
    7. I-FGSM       masked sign steps, projected (Eq. 16)                     attack/step.py
                    their direction smoothed / coarsened / accumulated (off)  attack/transfer.py
                    the victims' encoder activations in J (off by default)    attack/features.py
                    on the transforms each step draws                         attack/blurs.py
                    in rounds, with early stop, under a `Policy`              attack/rounds.py, verify.py
    8. outputs      G(x_k, c_t), masks, the start used                        attack/result.py

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
from typing import Protocol

import torch

from ..config import FIXED, AttackConfig, Policy
from ..errors import InvalidInputError
from ..models.victims import Victim
from ..ops.geometry import crop_resize
from . import masks
from .batch import Cancellation, check_images, make_groups, resolve_boxes
from .blurs import TransformSchedule
from .features import FeatureTerm
from .identity_check import FaceIdentity
from .identity_objective import IdentityTerm, measure_identity
from .noise_generator import apply_start, initial_tau, noise_step
from .objective import gradients, per_view
from .result import ProtectionResult, VictimResult, caller_order
from .rounds import Tally, plan_rounds
from .step import ifgsm_step
from .transfer import direction
from .verify import disrupted, margin_threshold, rounded

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BoxArg = tuple[int, int, int, int] | Sequence[tuple[int, int, int, int]] | None

__all__ = ["Protector", "ProtectionResult", "SaliencyModel", "VictimResult", "plan_rounds"]


class SaliencyModel(Protocol):
    """Anything that maps (N, 3, h, w) images in [0, 1] to (N, 1, h', w') saliency in [0, 1]."""

    def __call__(self, images: torch.Tensor, /) -> torch.Tensor: ...


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

    def load_recogniser(self) -> torch.nn.Module:
        """dlib's face-recognition ResNet as a PyTorch module on this device, loaded on first use."""
        if getattr(self, "_recogniser", None) is None:
            from ..models.recogniser import load_recogniser

            self._recogniser = load_recogniser().to(self.device)
        return self._recogniser

    # -- generators ------------------------------------------------------------------------
    def run(self, victim: Victim, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return victim.generator(x, c)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return victim.generator(x, c).float()

    @torch.no_grad()
    def generate(self, victim: Victim, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G for every target: (V, 3, R, R), (V, T, c) -> (V, T, 3, R, R). Always float32, whatever
        the precision of the gradient steps: references, checks, metrics and verdicts are measured
        as the victim really computes them."""
        v, t = labels.shape[:2]
        batch = inputs[:, None].expand(v, t, *inputs.shape[1:]).reshape(v * t, *inputs.shape[1:])
        return victim.generator(batch, labels.reshape(v * t, -1)).reshape(v, t, *inputs.shape[1:])

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
        identities: Sequence[list[FaceIdentity]] | None = None,
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
            identities: per image, one `identity_check.FaceIdentity` per face box (the identity
                term needs them: methods whose stages have `identity`).
        """
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        images = [im.to(self.device, torch.float32) for im in images]
        n = len(images)
        if n == 0:
            raise InvalidInputError("images", "the batch is empty")
        labels = self._check_labels(labels, n)
        check_images(images)
        seeds = list(seeds) if seeds is not None else [config.seed] * n
        masks_in = list(saliency_masks) if saliency_masks is not None else [None] * n
        box_args = list(boxes) if boxes is not None else [None] * n
        if not (len(box_args) == len(seeds) == len(masks_in) == n):
            raise InvalidInputError("images", "boxes, seeds and saliency masks must have one entry per image")
        resolved = [resolve_boxes(b, im) for b, im in zip(box_args, images, strict=True)]
        attacked = [v for v in self.victims if v.name in labels]
        if config.stages.blur in ("robust", "robust-cycle"):
            from ..ops.transforms import check_robust_side

            for v in attacked:
                check_robust_side(v.resolution, v.name)
        groups = make_groups(images, resolved, seeds, labels)
        given = {i: m for i, m in enumerate(masks_in) if m is not None}

        # 1. Reference outputs y_t = G(I, c_t), no blur.
        for g in groups:
            for v in attacked:
                g.refs[v.name] = self.generate(v, g.crops(g.original, v.resolution), per_view(g, g.labels[v.name]))
        timings["references"] = time.perf_counter() - t0

        # 2-4. Masks at the masks' resolution (the largest victim's), the step mask at the image's.
        t1 = time.perf_counter()
        r_m = max(v.resolution for v in attacked)
        view_masks = [masks.prepare(g, config.stages.mask, config, attacked, r_m, given, self.saliency) for g in groups]
        timings["masks"] = time.perf_counter() - t1

        schedule = TransformSchedule(config)
        cancel = Cancellation(cancelled, n)
        tally = Tally(n, [v.name for v in attacked])
        threshold = margin_threshold(policy.margin)
        checks_per_image = lambda sub: (  # noqa: E731
            len(sub.boxes) * sum(sub.labels[v.name].shape[1] for v in attacked) * (1 + 2 * len(policy.verify_after))
        )

        identity = None
        if config.stages.identity:
            if identities is None:
                raise InvalidInputError("method", f"{config.method} needs each face's landmarks (identities)")
            identity = IdentityTerm(self.load_recogniser(), dict(enumerate(identities)), config, seed=seeds[0])
            identity.prepare(groups, attacked, self.generate)
        features = (
            FeatureTerm(attacked, config.feature_weight, self.autocast_dtype) if config.feature_weight > 0 else None
        )

        def grad(active, points, gamma):
            return gradients(
                active,
                points,
                schedule.next(),
                gamma,
                attacked,
                self.run,
                tally,
                config.stages.ssim,
                config.targets_per_step,
                identity,
                features,
            )

        def measure(sub):
            if identity is not None:
                x_q = rounded(sub, sub.x, config.epsilon)
                return measure_identity(identity, sub, x_q, attacked, self.generate, policy.margin)
            return disrupted(sub, sub.x, config.epsilon, threshold, attacked, self.generate, policy.verify_after)

        def settle(active, candidates, round_end=False):
            ensure = policy.kind == "ensure"
            return tally.settle(active, candidates, measure, checks_per_image, focus=ensure, round_end=round_end)

        # 6. Start: none, uniform, or the noise generator (all confined to the step mask).
        t2 = time.perf_counter()
        eps = config.epsilon
        for g in groups:
            g.x = initial_tau(config.stages.start, g.original, g.seeds, eps)  # tau until applied below
        active = cancel(groups)
        if config.stages.start == "noise-generator":
            for k in range(config.noise_steps):
                grads, _ = grad(active, [g.original + g.get_x() for g in active], config.gamma)
                for g, gr in zip(active, grads, strict=True):
                    g.x = noise_step(g.get_x(), gr, config.noise_lr, eps)
                active = cancel(active)
                if progress:
                    progress("noise generator", k + 1, config.noise_steps)
        starts: dict[int, torch.Tensor] = {}
        for g in active:
            g.x = apply_start(g.original, g.get_x(), g.get_mask(), clip=config.stages.start == "noise-generator")
            for k, i in enumerate(g.index):
                starts[i] = (g.x[k] - g.original[k]).detach()
        timings["start"] = time.perf_counter() - t2

        # 7. Masked I-FGSM, in rounds under the policy.
        t3 = time.perf_counter()
        plan = plan_rounds(config.steps, policy)
        total_steps, done_steps = sum(k for k, _ in plan), 0
        if policy.kind == "ensure" and len(plan) > 1 and active:
            tally.baseline(active, measure, checks_per_image)  # the stall rule's first reference
        for r, (k, widen) in enumerate(plan):
            gamma = config.gamma * 0.5**r
            if widen:
                for g in active:
                    h, w = g.original.shape[-2:]
                    g.mask = masks.box_mask(g.boxes, g.n, h, w, g.original)
            for _ in range(k):
                if not active:
                    break
                grads, worst = grad(active, [g.x for g in active], gamma)
                for g, gr in zip(active, grads, strict=True):
                    step = direction(g, gr, config)
                    g.x = ifgsm_step(g.get_x(), step, g.get_mask(), g.original, config.step_size, eps)
                tally.stepped(active, r)
                done_steps += 1
                if policy.early_stop:
                    candidates = tally.due(active, worst, threshold)
                    if any(candidates.values()):
                        active = settle(active, candidates)
                active = cancel(active)
                if progress:
                    progress(f"round {r + 1}" if len(plan) > 1 else "I-FGSM", done_steps, total_steps)
            if policy.kind == "ensure" and active and r < len(plan) - 1:
                active = settle(active, None, round_end=True)
        if (policy.verify_after or policy.kind == "ensure") and active:
            active = settle(active, None)  # measure what is left: the verdict, and the best iterate
        tally.finish(active)
        timings["steps"] = time.perf_counter() - t3

        # 8. Outputs, back in the caller's order.
        protected = [None if cancel.flags[i] else tally.final.get(i) for i in range(n)]
        protected_or_clean = [p if p is not None else im for p, im in zip(protected, images, strict=True)]
        views = [(i, b) for i in range(n) for b in range(len(resolved[i]))]
        gather = caller_order(groups, views)
        results = []
        t4 = time.perf_counter()
        for v in attacked:
            refs = gather(lambda gi, v=v: groups[gi].refs[v.name])
            inputs = gather(lambda gi, v=v: groups[gi].crops(groups[gi].original, v.resolution))
            man = gather(lambda gi, v=v: view_masks[gi].get(f"manipulation:{v.name}"))
            res = VictimResult(v.name, [], refs, inputs, manipulation_mask=man)
            if compute_outputs and any(p is not None for p in protected):
                adv = torch.stack(
                    [crop_resize(protected_or_clean[i][None], resolved[i][b], v.resolution)[0] for i, b in views]
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
            image_steps=tally.image_steps,
            check_passes=tally.checks,
            steps=tally.steps,
            rounds=tally.rounds,
            passes=tally.passes,
            verified=tally.verified,
            timings=timings,
        )

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
