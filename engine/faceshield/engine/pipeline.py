"""`FaceShieldEngine`: decoded images in, protected images and SPEC 4 metrics out.

The facade that the CLI and the gRPC service call. It owns the models and the limits, turns
uint8 images into tensors, builds target labels, runs the `Protector`, quantizes the result to
8 bits without leaving the epsilon ball, and measures what the caller actually receives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .attack.protect import ProtectionResult, Protector
from .compilation import compile_generator
from .config import DEFAULT_MAX_STEPS, AttackConfig
from .errors import InvalidInputError
from .io.images import DEFAULT_MAX_PIXELS, check_dimensions, quantize, to_tensor
from .metrics import InputMetrics, TargetMetrics, input_metrics, output_metrics
from .models.labels import create_labels
from .modelset import ModelSet
from .ops.geometry import crop_resize, resolve_box

log = logging.getLogger(__name__)


@dataclass
class ProtectRequest:
    """One image to protect. `image` is (H, W, 3) uint8 RGB."""

    image: np.ndarray
    original_attributes: Sequence[float] | None = None
    targets: Sequence[str] | None = None
    face_box: tuple[int, int, int, int] | None = None
    saliency_mask: np.ndarray | None = None
    seed: int | None = None


@dataclass
class ProtectOutcome:
    protected: np.ndarray  # (H, W, 3) uint8
    input: InputMetrics
    targets: list[TargetMetrics]
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (R, R) float32
    outputs_original: np.ndarray | None = None  # (T, R, R, 3) uint8: G(I, c_t)
    outputs_protected: np.ndarray | None = None  # (T, R, R, 3) uint8: G(x_k, c_t)
    compute_seconds: float = 0.0


@dataclass(frozen=True)
class Limits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_steps: int = DEFAULT_MAX_STEPS
    max_batch: int = 32


class FaceShieldEngine:
    """Thread-safe facade over one `ModelSet` (calls are serialized on the device)."""

    def __init__(
        self,
        models: ModelSet,
        device: str = "cpu",
        limits: Limits = Limits(),
        precision: str = "auto",
        compile: str = "none",
    ):
        self.models = models
        self.device = torch.device(device)
        self.limits = limits
        self.precision = choose_precision(precision, self.device)
        autocast_dtype = torch.bfloat16 if self.precision == "bf16" else None
        if self.device.type == "cuda":
            # TF32 for every precision but strict fp32; bf16 autocast keeps fp32 accumulation.
            torch.backends.cuda.matmul.allow_tf32 = self.precision != "fp32"
            torch.backends.cudnn.allow_tf32 = self.precision != "fp32"
        if isinstance(models.generator, torch.nn.Module):
            models.generator.to(self.device)
        self.compile = compile
        self.protector = Protector(
            compile_generator(models.generator, compile),
            models.attributes,
            models.resolution,
            models.saliency,
            device=self.device,
            autocast_dtype=autocast_dtype,
        )
        self._lock = threading.Lock()
        self.counters = {"image_steps": 0, "images_protected": 0, "items_cancelled": 0}
        self.memory_batch: int | None = None  # images per device batch that fit in memory (CUDA)

    def warm_up(self) -> None:
        """Run one small protection (lazy initialisation, cuDNN autotuning) and, on CUDA, size
        device batches by measured memory rather than a constant."""
        r = self.models.resolution
        probe = 2
        image = np.full((r, r, 3), 128, dtype=np.uint8)
        requests = [ProtectRequest(image, targets=self.attributes[:1], seed=i) for i in range(probe)]
        config = AttackConfig.for_method(
            "pgd" if self.models.saliency is None else "union-saliency", steps=1, noise_steps=1
        )
        if self.device.type != "cuda":
            self.protect(requests[:1], config)
            return
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        self.protect(requests, config)
        per_image = max(1, (torch.cuda.max_memory_allocated(self.device) - base) // probe)
        free, _total = torch.cuda.mem_get_info(self.device)
        # Headroom for other targets per image (T scales activations) is taken at run time by
        # the out-of-memory split; this bound keeps the first try likely to fit.
        self.memory_batch = max(1, int(0.6 * free // per_image))
        log.info(
            "device batches sized by memory: %d images (%.1f MiB each at one target)",
            self.memory_batch,
            per_image / 2**20,
        )

    @property
    def attributes(self) -> list[str]:
        return list(self.models.attributes)

    # -- validation shared by protect and evaluate -----------------------------------------
    def _labels(self, requests: Sequence[ProtectRequest]) -> tuple[torch.Tensor, list[str]]:
        targets = list(requests[0].targets or self.models.attributes)
        for r in requests:
            if list(r.targets or self.models.attributes) != targets:
                raise InvalidInputError("targets", "every image of one batch must ask for the same targets")
        rows = []
        for r in requests:
            if r.original_attributes is None or len(r.original_attributes) == 0:
                rows.append([0.0] * len(self.models.attributes))
            else:
                vals = [float(v) for v in r.original_attributes]
                if len(vals) != len(self.models.attributes) or not all(v in (0.0, 1.0) for v in vals):
                    raise InvalidInputError(
                        "original_attributes",
                        f"expected {len(self.models.attributes)} values of 0 or 1 ({', '.join(self.models.attributes)})",
                    )
                rows.append(vals)
        labels = create_labels(torch.tensor(rows, dtype=torch.float32), self.models.attributes, targets)
        return labels, targets

    def _check_image(self, image: np.ndarray, field: str = "image") -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInputError(field, "expected an (H, W, 3) uint8 RGB array")
        check_dimensions(image.shape[0], image.shape[1], self.limits.max_pixels, field)

    # -- protect ---------------------------------------------------------------------------
    def protect(
        self,
        requests: Sequence[ProtectRequest],
        config: AttackConfig,
        cancelled: Callable[[], Sequence[bool]] | None = None,
        extras: bool = False,
    ) -> list[ProtectOutcome | None]:
        """Protect a batch that shares one configuration. None marks a cancelled item."""
        if not requests:
            raise InvalidInputError("images", "the batch is empty")
        if len(requests) > self.limits.max_batch:
            raise InvalidInputError("images", f"at most {self.limits.max_batch} images per batch")
        config.validate(self.limits.max_steps)
        for r in requests:
            self._check_image(r.image)
        labels, targets = self._labels(requests)
        images = [to_tensor(r.image) for r in requests]
        masks = None
        if any(r.saliency_mask is not None for r in requests):
            masks = [
                None if r.saliency_mask is None else torch.as_tensor(np.asarray(r.saliency_mask, dtype=np.float32))
                for r in requests
            ]
        seeds = [config.seed if r.seed is None else int(r.seed) for r in requests]
        boxes = [r.face_box for r in requests]
        t0 = time.perf_counter()
        with self._lock, torch.inference_mode(False):
            idx = list(range(len(requests)))
            # One device batch per memory-sized chunk (targets multiply the generator's batch).
            chunk = len(idx) if self.memory_batch is None else max(1, self.memory_batch // labels.shape[1])
            result = None
            for start in range(0, len(idx), chunk):
                part = self._protect_splitting(
                    idx[start : start + chunk], images, labels, config, boxes, masks, seeds, cancelled
                )
                result = part if result is None else _concat_results(result, part)
            survivors = [i for i, p in enumerate(result.protected) if p is not None]
            quantized = {i: quantize(result.protected[i], requests[i].image, config.epsilon) for i in survivors}
            # Measure what the caller receives: the 8-bit image, through the same crop.
            adv = {i: to_tensor(q).to(self.device) for i, q in quantized.items()}
            outs = None
            if survivors:
                crops = torch.stack(
                    [
                        crop_resize(adv[i][None], resolve_box(boxes[i], *adv[i].shape[1:]), self.models.resolution)[0]
                        for i in survivors
                    ]
                )
                outs = self._generate_splitting(crops, labels[survivors].to(self.device))
        compute = time.perf_counter() - t0
        self.counters["image_steps"] += result.image_steps
        self.counters["images_protected"] += len(survivors)
        self.counters["items_cancelled"] += sum(result.cancelled)

        outcomes: list[ProtectOutcome | None] = [None] * len(requests)
        if not survivors:
            return outcomes
        refs = result.references[survivors]
        inputs = result.generator_inputs[survivors]
        per_target = output_metrics(inputs, refs, outs, targets)
        for k, i in enumerate(survivors):
            orig_t = images[i][None].to(self.device)
            im = input_metrics(orig_t, adv[i][None])[0]
            outcome = ProtectOutcome(quantized[i], im, per_target[k], compute_seconds=compute)
            if extras:
                for name, m in (
                    ("saliency", result.saliency_mask),
                    ("manipulation", result.manipulation_mask),
                    ("union", result.union_mask),
                ):
                    if m is not None:
                        outcome.masks[name] = m[i, 0].detach().cpu().numpy().astype(np.float32)
                outcome.outputs_original = _to_uint8(refs[k])
                outcome.outputs_protected = _to_uint8(outs[k])
            outcomes[i] = outcome
        return outcomes

    def _generate_splitting(self, crops: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        try:
            return self.protector.generate(crops, labels)
        except torch.OutOfMemoryError:
            if crops.shape[0] == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            h = crops.shape[0] // 2
            return torch.cat(
                [self._generate_splitting(crops[:h], labels[:h]), self._generate_splitting(crops[h:], labels[h:])]
            )

    def _protect_splitting(self, idx, images, labels, config, boxes, masks, seeds, cancelled) -> ProtectionResult:
        """Run `idx` as one batch; when the device runs out of memory, run each half on its own.

        Results do not depend on batch composition, so splitting changes no answer, and no item
        is lost: only a single image that does not fit fails (as an OutOfMemoryError).
        """
        sub_cancelled = None
        if cancelled is not None:

            def sub_cancelled() -> list[bool]:
                flags = list(cancelled())
                return [bool(flags[i]) for i in idx]

        try:
            return self.protector.protect(
                [images[i] for i in idx],
                labels[idx],
                config,
                boxes=[boxes[i] for i in idx],
                saliency_masks=None if masks is None else [masks[i] for i in idx],
                seeds=[seeds[i] for i in idx],
                cancelled=sub_cancelled,
                compute_outputs=False,
            )
        except torch.OutOfMemoryError:
            if len(idx) == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(idx) // 2
            log.warning("out of device memory at batch %d; splitting into %d + %d", len(idx), half, len(idx) - half)
            self.counters["oom_splits"] = self.counters.get("oom_splits", 0) + 1
            a = self._protect_splitting(idx[:half], images, labels, config, boxes, masks, seeds, cancelled)
            b = self._protect_splitting(idx[half:], images, labels, config, boxes, masks, seeds, cancelled)
            return _concat_results(a, b)

    # -- evaluate --------------------------------------------------------------------------
    def evaluate(
        self,
        original: np.ndarray,
        protected: np.ndarray,
        original_attributes: Sequence[float] | None = None,
        targets: Sequence[str] | None = None,
        face_box: tuple[int, int, int, int] | None = None,
    ) -> tuple[InputMetrics, list[TargetMetrics]]:
        """SPEC 4 metrics of a protected image against its original (same size)."""
        self._check_image(original, "original")
        self._check_image(protected, "protected")
        if original.shape != protected.shape:
            raise InvalidInputError(
                "protected",
                f"size {protected.shape[1]}x{protected.shape[0]} differs from the original's {original.shape[1]}x{original.shape[0]}",
            )
        req = ProtectRequest(original, original_attributes, targets, face_box)
        labels, names = self._labels([req])
        box = resolve_box(face_box, original.shape[0], original.shape[1])
        a, b = to_tensor(original)[None].to(self.device), to_tensor(protected)[None].to(self.device)
        r = self.models.resolution
        with self._lock:
            ca, cb = crop_resize(a, box, r), crop_resize(b, box, r)
            refs = self.protector.generate(ca, labels.to(self.device))
            outs = self.protector.generate(cb, labels.to(self.device))
        return input_metrics(a, b)[0], output_metrics(ca, refs, outs, names)[0]

    def info(self) -> dict:
        m = self.models
        return {
            "name": m.name,
            "version": m.version,
            "trained": m.trained,
            "description": m.description,
            "resolution": m.resolution,
            "attributes": list(m.attributes),
            "saliency": m.saliency_name,
            "hashes": dict(m.hashes),
            "providers": list(m.providers),
            "device": str(self.device),
            "precision": self.precision,
            "compile": self.compile,
            "saliency_runtime": "" if m.saliency is None else getattr(m.saliency, "runtime", "custom"),
            "memory_batch": self.memory_batch,
            "max_pixels": self.limits.max_pixels,
            "max_steps": self.limits.max_steps,
            "max_batch": self.limits.max_batch,
        }


PRECISIONS = ("fp32", "tf32", "bf16")


def choose_precision(name: str, device: torch.device) -> str:
    """ "auto": bf16 autocast on a CUDA device that supports it, else fp32. On a CPU with native
    bf16 (the dev box's AVX512-BF16) bf16 is 1.3-2.4x faster, with protection quality at the edge
    of the issue's bar (benchmarks/results/precision-cpu.md), so it is an opt-in there."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if name not in PRECISIONS:
        raise InvalidInputError("precision", f"unknown precision {name!r}; choose auto, {', '.join(PRECISIONS)}")
    return name


def _concat_results(a: ProtectionResult, b: ProtectionResult) -> ProtectionResult:
    def cat(x, y):
        return None if x is None or y is None else torch.cat([x, y])

    return ProtectionResult(
        protected=a.protected + b.protected,
        references=torch.cat([a.references, b.references]),
        outputs=cat(a.outputs, b.outputs),
        generator_inputs=torch.cat([a.generator_inputs, b.generator_inputs]),
        saliency_mask=cat(a.saliency_mask, b.saliency_mask),
        manipulation_mask=cat(a.manipulation_mask, b.manipulation_mask),
        union_mask=cat(a.union_mask, b.union_mask),
        start=a.start + b.start,
        cancelled=a.cancelled + b.cancelled,
        image_steps=a.image_steps + b.image_steps,
        timings={k: a.timings.get(k, 0.0) + b.timings.get(k, 0.0) for k in set(a.timings) | set(b.timings)},
    )


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(T, 3, R, R) in [-1, 1] -> (T, R, R, 3) uint8."""
    return ((x.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
