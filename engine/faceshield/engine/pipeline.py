"""`FaceShieldEngine`: decoded images in, protected images and their verdict out.

The facade that the CLI and the gRPC service call. Per batch it turns checked requests
(`requests.check_request`) into tensors and labels per victim, runs the `Protector` on the
device (`execution`), rounds the result to 8 bits without leaving the epsilon ball, and measures
what the caller actually receives: every metric per face, victim and target, and the verdict.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .attack.identity_check import IdentityJudge, judge_image
from .attack.protect import Protector
from .attack.result import ProtectionResult, concat_results
from .compilation import compile_generator
from .config import DEFAULT_MAX_STEPS, FIXED, AttackConfig, Policy
from .defaults import VERDICT_RULES
from .errors import InvalidInputError
from .execution import Execution, choose_precision, split_on_oom
from .io.images import DEFAULT_MAX_PIXELS, quantize, to_tensor
from .io.processing import processing as named_processing
from .metrics import SUCCESS_MSE, InputMetrics, TargetMetrics, input_metrics, output_metrics
from .models.victims import qualified
from .modelset import ModelSet
from .ops.geometry import crop_resize
from .outcome import EngineInfo, GeneratorOutput, ProtectOutcome, Verdict
from .requests import CheckedRequest, ProtectRequest, check_image, check_request

log = logging.getLogger(__name__)

__all__ = ["FaceShieldEngine", "Limits", "ProtectOutcome", "ProtectRequest", "Verdict", "choose_precision"]


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
        verdict: str = "disruption",
    ):
        if verdict not in VERDICT_RULES:
            raise InvalidInputError("verdict", f"unknown verdict rule {verdict!r}; choose {', '.join(VERDICT_RULES)}")
        self.verdict_rule = verdict
        self.judge = IdentityJudge()
        self.models = models
        self.limits = limits
        self.execution = Execution.choose(device, precision, compile)
        for v in models.victims:
            if isinstance(v.generator, torch.nn.Module):
                v.generator.to(self.execution.device)
        victims = [dataclasses.replace(v, generator=compile_generator(v.generator, compile)) for v in models.victims]
        self.protector = Protector(
            victims, models.saliency, device=self.execution.device, autocast_dtype=self.execution.autocast_dtype
        )
        self._lock = threading.Lock()
        self.counters = {"image_steps": 0, "images_protected": 0, "items_cancelled": 0, "oom_splits": 0}
        self.memory_batch: int | None = None  # images per device batch that fit in memory (CUDA)

    @property
    def device(self) -> torch.device:
        return self.execution.device

    @property
    def precision(self) -> str:
        return self.execution.precision

    @property
    def attributes(self) -> list[str]:
        return list(self.models.attributes)

    def check(self, request: ProtectRequest | CheckedRequest) -> CheckedRequest:
        """Validate one request against the models and limits (`requests.check_request`)."""
        return check_request(request, self.models.victims, self.limits.max_pixels)

    def warm_up(self) -> None:
        """Run one small protection (lazy initialisation, cuDNN autotuning) and, on CUDA, size
        device batches by measured memory rather than a constant."""
        r = self.models.resolution
        probe = 2
        image = np.full((r, r, 3), 128, dtype=np.uint8)
        first = [qualified(v.name, v.targets[0]) for v in self.models.victims]
        requests = [ProtectRequest(image, targets=first, seed=i) for i in range(probe)]
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

    # -- protect ---------------------------------------------------------------------------
    def protect(
        self,
        requests: Sequence[ProtectRequest | CheckedRequest],
        config: AttackConfig,
        cancelled: Callable[[], Sequence[bool]] | None = None,
        extras: bool = False,
        policy: Policy = FIXED,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[ProtectOutcome | None]:
        """Protect a batch that shares one configuration and targets. None marks a cancelled item."""
        if not requests:
            raise InvalidInputError("images", "the batch is empty")
        if len(requests) > self.limits.max_batch:
            raise InvalidInputError("images", f"at most {self.limits.max_batch} images per batch")
        config.validate(self.limits.max_steps)
        policy.validate(self.limits.max_steps, config.steps)
        checked = [self.check(r) for r in requests]
        if any(c.target_key != checked[0].target_key for c in checked):
            raise InvalidInputError("targets", "every image of one batch must ask for the same targets")
        labels = self.target_labels(checked)
        images = [to_tensor(c.image) for c in checked]
        masks = [None if c.saliency_mask is None else torch.from_numpy(c.saliency_mask) for c in checked]
        seeds = [config.seed if c.seed is None else c.seed for c in checked]
        boxes = [c.boxes for c in checked]
        t0 = time.perf_counter()
        faces = None
        if config.stages.identity or self.verdict_rule == "identity":
            faces = [[self.judge.face(c.image, (b[0], b[1], b[2], b[3])) for b in c.boxes] for c in checked]
        with self._lock, self.execution.backends(), torch.inference_mode(False):
            per_image_targets = sum(lab.shape[1] for lab in labels.values()) * max(len(b) for b in boxes)
            chunk = len(checked) if self.memory_batch is None else max(1, self.memory_batch // per_image_targets)

            def run(idx: Sequence[int]) -> ProtectionResult:
                return self.protector.protect(
                    [images[i] for i in idx],
                    {k: v[list(idx)] for k, v in labels.items()},
                    config,
                    boxes=[boxes[i] for i in idx],
                    saliency_masks=[masks[i] for i in idx],
                    seeds=[seeds[i] for i in idx],
                    cancelled=None if cancelled is None else (lambda: [bool(cancelled()[i]) for i in idx]),
                    compute_outputs=False,
                    policy=policy,
                    progress=progress,
                    identities=[faces[i] for i in idx] if faces is not None and config.stages.identity else None,
                )

            parts = [
                (idx, split_on_oom(run, idx, concat_results, self.execution, self._count_split))
                for idx in (list(range(s, min(s + chunk, len(checked)))) for s in range(0, len(checked), chunk))
            ]
            outcomes = self._outcomes(checked, images, labels, parts, config, policy, extras, faces)
        compute = time.perf_counter() - t0
        for o in outcomes:
            if o is not None:
                o.compute_seconds = compute
        return outcomes

    def _count_split(self, _size: int) -> None:
        self.counters["oom_splits"] += 1

    def target_labels(self, checked: Sequence[CheckedRequest]) -> dict[str, torch.Tensor]:
        """Per victim name, the label tensors of the checked requests' edits, as `protect` feeds the
        victims (public: evaluation tools that re-run a victim on other photos use the same labels)."""
        original = torch.tensor([c.attributes for c in checked], dtype=torch.float32).reshape(len(checked), -1)
        by_name = {v.name: v for v in self.models.victims}
        return {
            name: by_name[name].labels(original, self.models.attributes, list(targets))
            for name, targets in checked[0].targets.items()
        }

    def _outcomes(self, checked, images, labels, parts, config, policy, extras, faces) -> list[ProtectOutcome | None]:
        """Round to 8 bits, measure what the caller receives, and count (under the engine lock)."""
        outcomes: list[ProtectOutcome | None] = [None] * len(checked)
        victims = [v for v in self.protector.victims if v.name in labels]
        for idx, result in parts:
            self.counters["image_steps"] += result.image_steps
            self.counters["items_cancelled"] += sum(result.cancelled)
            for k, i in enumerate(idx):
                x = result.protected[k]
                if x is None:
                    continue
                c = checked[i]
                delivered = quantize(x, c.image, config.epsilon)
                adv = to_tensor(delivered)[None].to(self.device)
                rows, outputs, judged = [], [], []
                for v in victims:
                    vr = next(r for r in result.victims if r.name == v.name)
                    view_rows = [j for j, (img, _) in enumerate(result.views) if img == k]
                    crops = torch.stack([crop_resize(adv, c.boxes[b], v.resolution)[0] for b in range(len(c.boxes))])
                    lab = labels[v.name][i][None].expand(len(c.boxes), -1, -1)
                    outs = self.protector.generate(v, crops, lab)
                    refs = vr.references[view_rows]
                    per_face = output_metrics(vr.generator_inputs[view_rows], refs, outs, list(c.targets[v.name]))
                    for face, metrics in enumerate(per_face):
                        rows += [_tag(m, v.name, face) for m in metrics]
                        if faces is not None and self.verdict_rule == "identity":
                            judged += [
                                (v.name, t, face, _to_uint8(refs[face, j]), _to_uint8(outs[face, j]))
                                for j, t in enumerate(c.targets[v.name])
                            ]
                        if extras:
                            outputs += [
                                GeneratorOutput(v.name, t, face, _to_uint8(refs[face, j]), _to_uint8(outs[face, j]))
                                for j, t in enumerate(c.targets[v.name])
                            ]
                processed = {
                    p: self._after_processing(p, c, delivered, labels, i, victims) for p in policy.verify_after
                }
                after = {p: survives for p, (_, _, survives) in processed.items()}
                missed = tuple(
                    qualified(m.victim, m.target) + (f"@{m.face}" if m.face else "") for m in rows if not m.success
                )
                identity = None
                if faces is not None and self.verdict_rule == "identity":
                    edits_after = {p: (photo, outputs) for p, (photo, outputs, _) in processed.items()}
                    identity = judge_image(self.judge, faces[i], delivered, judged, c.image, edits_after)
                verdict = Verdict(
                    identity.protected if identity is not None else (not missed and all(after.values())),
                    missed,
                    result.steps[k],
                    result.rounds[k],
                    after,
                    result.passes[k],
                    self.verdict_rule,
                    identity,
                )
                original = images[i][None].to(self.device)
                outcome = ProtectOutcome(
                    delivered,
                    input_metrics(original, adv)[0],
                    rows,
                    verdict,
                    boxes=tuple(tuple(b) for b in c.boxes),
                    generator_outputs=outputs,
                )
                first = [j for j, (img, b) in enumerate(result.views) if img == k and b == 0][0]
                _measure_mask(outcome, result, first)
                if extras:
                    for name, m in (
                        ("saliency", result.saliency_mask),
                        ("manipulation", result.manipulation_mask),
                        ("union", result.union_mask),
                    ):
                        if m is not None:
                            outcome.masks[name] = m[first, 0].detach().cpu().numpy().astype(np.float32)
                outcomes[i] = outcome
                self.counters["images_protected"] += 1
        return outcomes

    @torch.no_grad()
    def _after_processing(self, processing: str, c: CheckedRequest, delivered: np.ndarray, labels, i: int, victims):
        """What real `processing` of the protected photo leaves, from one pass of each victim over
        the processed photo: (the photo a forger gets, (victim, target, face) -> 8-bit edit, whether
        every edit is still disrupted against the processed original's, G(T(x)) vs G(T(I)))."""
        transform = named_processing(processing)
        photo = transform(delivered)
        a = to_tensor(transform(c.image))[None].to(self.device)
        b = to_tensor(photo)[None].to(self.device)
        outputs, survives = {}, True
        for v in victims:
            lab = labels[v.name][i][None]
            for face, box in enumerate(c.boxes):
                ref = self.protector.generate(v, crop_resize(a, box, v.resolution), lab)
                out = self.protector.generate(v, crop_resize(b, box, v.resolution), lab)
                survives = survives and float((out - ref).pow(2).mean(dim=(2, 3, 4)).min()) > SUCCESS_MSE
                for j, t in enumerate(c.targets[v.name]):
                    outputs[(v.name, t, face)] = _to_uint8(out[0, j])
        return photo, outputs, survives

    # -- evaluate --------------------------------------------------------------------------
    def evaluate(
        self,
        original: np.ndarray,
        protected: np.ndarray,
        original_attributes: Sequence[float] | None = None,
        targets: Sequence[str] | None = None,
        face_box=None,
    ) -> tuple[InputMetrics, list[TargetMetrics]]:
        """Every metric of a protected image against its original (same size), per face, victim and target."""
        check_image(protected, self.limits.max_pixels, "protected")
        try:
            c = self.check(ProtectRequest(original, original_attributes, targets, face_box))
        except InvalidInputError as exc:
            raise (InvalidInputError("original", exc.description) if exc.field == "image" else exc) from None
        if original.shape != protected.shape:
            raise InvalidInputError(
                "protected",
                f"size {protected.shape[1]}x{protected.shape[0]} differs from the original's "
                f"{original.shape[1]}x{original.shape[0]}",
            )
        labels = self.target_labels([c])
        a, b = to_tensor(original)[None].to(self.device), to_tensor(protected)[None].to(self.device)
        rows: list[TargetMetrics] = []
        with self._lock, self.execution.backends():
            for v in (v for v in self.protector.victims if v.name in labels):
                crops_a = torch.cat([crop_resize(a, box, v.resolution) for box in c.boxes])
                crops_b = torch.cat([crop_resize(b, box, v.resolution) for box in c.boxes])
                lab = labels[v.name].expand(len(c.boxes), -1, -1)
                refs, outs = self.protector.generate(v, crops_a, lab), self.protector.generate(v, crops_b, lab)
                per_face = output_metrics(crops_a, refs, outs, list(c.targets[v.name]))
                rows += [_tag(m, v.name, face) for face, metrics in enumerate(per_face) for m in metrics]
        return input_metrics(a, b)[0], rows

    def evaluate_identity(self, original: np.ndarray, protected: np.ndarray, targets=None, face_box=None):
        """The identity verdict of a protected image against its original, as `protect` judges it
        (`identity_check.IdentityReport`); None under the disruption rule."""
        if self.verdict_rule != "identity":
            return None
        c = self.check(ProtectRequest(original, None, targets, face_box))
        labels = self.target_labels([c])
        a, b = to_tensor(original)[None].to(self.device), to_tensor(protected)[None].to(self.device)
        faces = [self.judge.face(original, (x[0], x[1], x[2], x[3])) for x in c.boxes]
        edits = []
        with self._lock, self.execution.backends():
            for v in (v for v in self.protector.victims if v.name in labels):
                for face, box in enumerate(c.boxes):
                    refs = self.protector.generate(v, crop_resize(a, box, v.resolution), labels[v.name])[0]
                    outs = self.protector.generate(v, crop_resize(b, box, v.resolution), labels[v.name])[0]
                    edits += [
                        (v.name, t, face, _to_uint8(refs[j]), _to_uint8(outs[j]))
                        for j, t in enumerate(c.targets[v.name])
                    ]
        return judge_image(self.judge, faces, protected, edits, original)

    def info(self) -> EngineInfo:
        m = self.models
        return EngineInfo(
            name=m.name,
            version=m.version,
            trained=m.trained,
            description=m.description,
            victims=list(m.victims),
            attributes=list(m.attributes),
            saliency=m.saliency_name,
            hashes=dict(m.hashes),
            providers=list(m.providers),
            device=str(self.device),
            precision=self.precision,
            compile=self.execution.compile,
            saliency_runtime="" if m.saliency is None else getattr(m.saliency, "runtime", "custom"),
            memory_batch=self.memory_batch,
            limits=self.limits,
        )


def _tag(m: TargetMetrics, victim: str, face: int) -> TargetMetrics:
    from dataclasses import replace

    return replace(m, victim=victim, face=face)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, R, R) in [-1, 1] -> (R, R, 3) uint8."""
    return ((x.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _measure_mask(outcome: ProtectOutcome, result: ProtectionResult, view: int) -> None:
    """How much of the (first) face crop the method's step mask lets it move: the share above 0.5
    and the mean step scale (the union is not clamped; above 1 the step is full, so clamp here).
    Unmasked methods keep 1.0. This is what explains a masked method's miss."""
    masks = result.union_mask if result.union_mask is not None else result.saliency_mask
    if masks is None:
        return
    m = masks[view, 0].detach().float().clamp(max=1.0)
    outcome.mask_coverage = float((m > 0.5).float().mean())
    outcome.mask_mean = float(m.mean())
