"""Union-saliency protection (Algorithm 1, SPEC 3): the masked I-FGSM step loop.

`Protector` runs every configuration of SPEC 3 on a batch: N images of any size, T targets per
image. Images that share a size and face box form one group and move through each stage as one
tensor; the generator sees every group, target and blur of a step in one batch.

    >>> protector = Protector(generator, attributes, resolution=128, saliency=tracer)
    >>> result = protector.protect(images, labels, AttackConfig.for_method("union-saliency"))
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from ..config import IFGSM_JITTER, AttackConfig
from ..errors import InvalidInputError
from ..ops.filters import Blur, ruiz_blur_schedule
from ..ops.geometry import Box, crop_resize, paste_mask, region_mask, resolve_box
from .masks import manipulation_mask, union_mask
from .noise_generator import noise_step, uniform_start
from .objective import SSIMPenalty, disruption_loss

log = logging.getLogger(__name__)

EOT_SAMPLES = 9  # Ruiz et al. average over nine blurs per step


class SaliencyModel(Protocol):
    """Anything that maps (N, 3, h, w) images in [0, 1] to (N, 1, h', w') saliency in [0, 1]."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ProtectionResult:
    """What one `Protector.protect` call produced, in the caller's batch order.

    protected: per image (3, H, W) in [-1, 1], None where the item was cancelled.
    references / outputs: (N, T, 3, R, R) G(I, c_t) and G(x_k, c_t) (no blur).
    generator_inputs: (N, 3, R, R) the original face crop the generator saw.
    saliency_mask / manipulation_mask / union_mask: (N, 1, R, R) where computed, else None.
    start: per image, the perturbation x_0 - I actually used (for reproducing a run).
    image_steps: generator forward+backward passes spent, counted per image and target.
    """

    protected: list[torch.Tensor | None]
    references: torch.Tensor
    outputs: torch.Tensor | None
    generator_inputs: torch.Tensor
    saliency_mask: torch.Tensor | None
    manipulation_mask: torch.Tensor | None
    union_mask: torch.Tensor | None
    start: list[torch.Tensor | None]
    cancelled: list[bool]
    image_steps: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Group:
    """Images sharing (H, W, box): one tensor through every stage."""

    index: list[int]  # positions in the caller's batch
    box: Box
    original: torch.Tensor  # (n, 3, H, W)
    mask: torch.Tensor | None = None  # (n, 1, H, W) where the step may move pixels
    x: torch.Tensor | None = None
    ssim: SSIMPenalty | None = None  # built on first use; rebuilt after `keep`

    def keep(self, rows: list[int]) -> _Group:
        sel = torch.tensor(rows, device=self.original.device)
        return _Group(
            [self.index[r] for r in rows],
            self.box,
            self.original[sel],
            None if self.mask is None else self.mask[sel],
            None if self.x is None else self.x[sel],
        )


class Protector:
    """Runs SPEC 3 against a generator.

    Args:
        generator: G(x, c), x (N, 3, R, R) in [-1, 1], c (N, c_dim); eager or TorchScript.
        attributes: the attribute names of c, in order.
        resolution: R, the generator's input size.
        saliency: TRACER (or any `SaliencyModel`) for configurations that need M_sm and were
            given no caller mask.
        device: where the generator and the loop run.
        autocast_dtype: e.g. torch.bfloat16 to run the generator under autocast (GPU speed);
            None keeps float32.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        attributes: Sequence[str],
        resolution: int,
        saliency: SaliencyModel | None = None,
        device: str | torch.device = "cpu",
        autocast_dtype: torch.dtype | None = None,
    ):
        self.generator = generator
        self.attributes = list(attributes)
        self.resolution = int(resolution)
        self.saliency = saliency
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype

    # -- generator -------------------------------------------------------------------------
    def _g(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.generator(x, c)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return self.generator(x, c).float()

    @torch.no_grad()
    def generate(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G for every target: (N, 3, R, R), (N, T, c) -> (N, T, 3, R, R)."""
        n, t = labels.shape[:2]
        batch = inputs[:, None].expand(n, t, *inputs.shape[1:]).reshape(n * t, *inputs.shape[1:])
        out = self._g(batch, labels.reshape(n * t, -1))
        return out.reshape(n, t, *inputs.shape[1:])

    # -- main entry ------------------------------------------------------------------------
    def protect(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        labels: torch.Tensor,
        config: AttackConfig,
        boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
        saliency_masks: Sequence[torch.Tensor | None] | None = None,
        seeds: Sequence[int] | None = None,
        cancelled: Callable[[], Sequence[bool]] | None = None,
        compute_outputs: bool = True,
    ) -> ProtectionResult:
        """Protect a batch.

        Args:
            images: (N, 3, H, W) or N tensors (3, H_i, W_i), generator space [-1, 1].
            labels: (N, T, c_dim) target label vectors (see `models.labels.create_labels`).
            config: the attack configuration.
            boxes: per image face box (left, top, right, bottom) or None for the centre square.
            saliency_masks: per image caller M_sm at the image's own size, (H, W) or (1, H, W),
                values in [0, 1], or None (the saliency model computes it).
            seeds: per image seed of the random start (default: config.seed for every image).
            cancelled: polled once per step; returns one flag per image. Flagged images leave
                the batch at once and come back as None.
            compute_outputs: also run G on the result (the output-side metrics need it).
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        images = [im.to(self.device, torch.float32) for im in images]
        n = len(images)
        if n == 0:
            raise InvalidInputError("images", "the batch is empty")
        labels = labels.to(self.device, torch.float32)
        if labels.ndim != 3 or labels.shape[0] != n or labels.shape[2] != len(self.attributes):
            raise InvalidInputError(
                "targets", f"labels must be (N={n}, T, {len(self.attributes)}), got {tuple(labels.shape)}"
            )
        for i, im in enumerate(images):
            if im.ndim != 3 or im.shape[0] != 3:
                raise InvalidInputError("image", f"image {i} must be (3, H, W), got {tuple(im.shape)}")
            if not torch.isfinite(im).all():
                raise InvalidInputError("image", f"image {i} holds non-finite values")
        boxes = list(boxes) if boxes is not None else [None] * n
        seeds = list(seeds) if seeds is not None else [config.seed] * n
        masks_in = list(saliency_masks) if saliency_masks is not None else [None] * n
        if not (len(boxes) == len(seeds) == len(masks_in) == n):
            raise InvalidInputError("images", "boxes, seeds and saliency masks must have one entry per image")
        resolved = [resolve_box(b, im.shape[1], im.shape[2]) for b, im in zip(boxes, images, strict=True)]
        stages = config.stages
        r = self.resolution

        # Group images by (H, W, box); work in group-major order from here on.
        keyed: dict[tuple, list[int]] = {}
        for i, (im, b) in enumerate(zip(images, resolved, strict=True)):
            keyed.setdefault((im.shape[1], im.shape[2], b), []).append(i)
        groups = [_Group(idx, key[2], torch.stack([images[i] for i in idx])) for key, idx in keyed.items()]
        order = [i for g in groups for i in g.index]
        labels_g = labels[order]
        crops = torch.cat([crop_resize(g.original, g.box, r) for g in groups])

        # 1. Reference outputs y_t = G(I, c_t), no blur.
        references = self.generate(crops, labels_g)
        timings["references"] = time.perf_counter() - t0

        # 2-4. Masks at generator resolution.
        t1 = time.perf_counter()
        sal = man = uni = None
        if stages.mask in ("saliency", "union"):
            sal = self._saliency(crops, [(masks_in[i], images[i], resolved[i]) for i in order])
            if stages.mask == "union":
                man = manipulation_mask(references, crops, config.manipulation_threshold)
                uni = union_mask(sal, man, config.alpha, config.beta)
        step_mask_r = uni if stages.mask == "union" else sal
        offset = 0
        for g in groups:
            h, w = g.original.shape[-2:]
            k = len(g.index)
            if step_mask_r is None:
                g.mask = region_mask(g.box, h, w, g.original).expand(k, 1, h, w)
            else:
                g.mask = paste_mask(step_mask_r[offset : offset + k], g.box, h, w)
            offset += k
        timings["masks"] = time.perf_counter() - t1

        # Blur schedule: the same blur(s) for every image of the batch at a given step.
        schedule = ruiz_blur_schedule()
        fixed_blur = Blur("gaussian", config.blur_kernel, config.blur_sigma)

        def blurs_for_step() -> list:
            if stages.blur == "none":
                return [None]
            if stages.blur == "gaussian":
                return [fixed_blur]
            if stages.blur == "spread-spectrum":
                return [next(schedule)]
            return list(itertools.islice(schedule, EOT_SAMPLES))

        flags = [False] * n
        image_steps = 0
        position = {i: p for p, i in enumerate(order)}

        def objective_grad(active: list[_Group], points: list[torch.Tensor], blurs: list) -> list[torch.Tensor]:
            nonlocal image_steps
            xs = [p.detach().requires_grad_(True) for p in points]
            rows = [position[i] for g in active for i in g.index]
            gen_in = torch.cat([crop_resize(x, g.box, r) for g, x in zip(active, xs, strict=True)])
            loss = disruption_loss(self._g, gen_in, labels_g[rows], references[rows], blurs)
            image_steps += loss.numel() * labels_g.shape[1] * len(blurs)
            total = loss.sum()
            if stages.ssim and config.gamma > 0:
                for g, x in zip(active, xs, strict=True):
                    if g.ssim is None:
                        g.ssim = SSIMPenalty(g.original, g.box)
                    total = total - config.gamma * g.ssim(x).sum()
            return list(torch.autograd.grad(total, xs))

        def poll(active: list[_Group]) -> list[_Group]:
            if cancelled is None:
                return active
            now = list(cancelled())
            out = []
            for g in active:
                rows = [k for k, i in enumerate(g.index) if not now[i]]
                for i in g.index:
                    flags[i] = flags[i] or bool(now[i])
                if len(rows) == len(g.index):
                    out.append(g)
                elif rows:
                    out.append(g.keep(rows))
            if sum(len(g.index) for g in out) < sum(len(g.index) for g in active):
                log.info("dropped cancelled items; %d of %d cancelled so far", sum(flags), n)
            return out

        # 6. Start: none, uniform, or the noise generator (all confined to the step mask).
        t2 = time.perf_counter()
        eps = config.epsilon
        starts: dict[int, torch.Tensor] = {}
        for g in groups:
            shape = tuple(g.original.shape[1:])
            if stages.start == "none":
                tau = torch.zeros_like(g.original)
            else:
                bound = IFGSM_JITTER if stages.start == "jitter" else eps
                tau = torch.stack([uniform_start(shape, bound, seeds[i]) for i in g.index]).to(self.device)
            g.x = tau  # holds tau until the start is applied below
        active = poll(groups)
        if stages.start == "noise-generator":
            for _ in range(config.noise_steps):
                blurs = blurs_for_step()
                grads = objective_grad(active, [g.original + g.x for g in active], blurs)
                for g, grad in zip(active, grads, strict=True):
                    g.x = noise_step(g.x, grad, config.noise_lr, eps)
                active = poll(active)
        for g in active:
            g.x = g.original + g.x * g.mask
            if stages.start == "noise-generator":
                g.x = g.x.clamp(-1, 1)  # x_0 = clip(I + M * tau) (SPEC 3.6)
            # A uniform start is not clipped, exactly as Ruiz et al.'s `perturb`: the first step's
            # projection does that.
            for k, i in enumerate(g.index):
                starts[i] = (g.x[k] - g.original[k]).detach()
        timings["start"] = time.perf_counter() - t2

        # 7. Masked I-FGSM.
        t3 = time.perf_counter()
        for _ in range(config.steps):
            if not active:
                break
            blurs = blurs_for_step()
            grads = objective_grad(active, [g.x for g in active], blurs)
            with torch.no_grad():
                for g, grad in zip(active, grads, strict=True):
                    moved = g.x + config.step_size * grad.sign() * g.mask
                    g.x = (g.original + (moved - g.original).clamp(-eps, eps)).clamp(-1, 1)
            active = poll(active)
        timings["steps"] = time.perf_counter() - t3

        # 8. Outputs, back in the caller's order.
        protected: list[torch.Tensor | None] = [None] * n
        for g in active:
            for k, i in enumerate(g.index):
                protected[i] = g.x[k].detach()
        inverse = [position[i] for i in range(n)]
        outputs = None
        if compute_outputs and any(p is not None for p in protected):
            t4 = time.perf_counter()
            adv = torch.stack(
                [
                    crop_resize((p if p is not None else images[i])[None], resolved[i], r)[0]
                    for i, p in enumerate(protected)
                ]
            )
            outputs = self.generate(adv, labels)
            timings["outputs"] = time.perf_counter() - t4
        timings["total"] = time.perf_counter() - t0

        def back(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[inverse]

        return ProtectionResult(
            protected=protected,
            references=references[inverse],
            outputs=outputs,
            generator_inputs=crops[inverse],
            saliency_mask=back(sal),
            manipulation_mask=back(man),
            union_mask=back(uni),
            start=[starts.get(i) for i in range(n)],
            cancelled=flags,
            image_steps=image_steps,
            timings=timings,
        )

    def _saliency(self, crops: torch.Tensor, given: list[tuple]) -> torch.Tensor:
        """M_sm at generator resolution: the caller's mask (cropped like the image) where given,
        else the saliency model's."""
        r = self.resolution
        out = torch.empty(crops.shape[0], 1, r, r, device=crops.device)
        need = [k for k, (m, _, _) in enumerate(given) if m is None]
        if need:
            if self.saliency is None:
                raise InvalidInputError(
                    "saliency_mask",
                    "this method needs a saliency mask: pass one, or load a saliency model (TRACER)",
                )
            with torch.no_grad():
                s = self.saliency((crops[need] + 1) / 2).to(crops.device, torch.float32)
            out[need] = _to_resolution(s, r)
        for k, (m, image, box) in enumerate(given):
            if m is None:
                continue
            m = torch.as_tensor(m, dtype=torch.float32, device=crops.device)
            if m.ndim == 2:
                m = m[None]
            if m.ndim != 3 or m.shape[0] != 1 or m.shape[1:] != image.shape[1:]:
                raise InvalidInputError(
                    "saliency_mask",
                    f"expected a mask of the image's size {tuple(image.shape[1:])}, got {tuple(m.shape)}",
                )
            if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
                raise InvalidInputError("saliency_mask", "values must be finite and lie in [0, 1]")
            out[k] = crop_resize(m[None], box, r)[0]
        return out


def _to_resolution(mask: torch.Tensor, size: int) -> torch.Tensor:
    if mask.shape[-2:] == (size, size):
        return mask
    shrink = mask.shape[-1] > size or mask.shape[-2] > size
    return F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
