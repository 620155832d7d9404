"""The demo pair's figures, measured on held-out synthetic faces.

- `edit_accuracy`: does G(x, c_t) show the attribute c_t asks for (read from the pixels)?
- `saliency_mae`: mean |M_sm - ground-truth foreground| at the generator's resolution.
- `protection_figures`: docs/method.md §5 success rates and input PSNR of protection methods through the
  engine (8-bit outputs, as a caller receives them), and of uniform noise of the same epsilon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AttackConfig
from ..io.images import to_tensor
from ..metrics import success_rate
from ..models.labels import create_labels
from ..modelset import ModelSet
from ..pipeline import FaceShieldEngine, ProtectRequest
from .dataset import HeldOutFace
from .faces import ATTRIBUTES
from .measure import measure, regions, target_hit

log = logging.getLogger(__name__)


@torch.no_grad()
def edit_accuracy(
    generator: Callable, faces: Sequence[HeldOutFace], device: str | torch.device = "cpu", batch: int = 64
) -> dict:
    """Share of (face, target) edits whose target attribute is measured in the output."""
    device = torch.device(device)
    hits = {name: 0 for name in ATTRIBUTES}
    for s in range(0, len(faces), batch):
        chunk = faces[s : s + batch]
        x = torch.stack([to_tensor(f.image) for f in chunk]).to(device)
        c_org = torch.tensor(np.stack([f.attributes for f in chunk]), dtype=torch.float32)
        labels = create_labels(c_org, ATTRIBUTES)  # (n, 5, 5)
        n, t = labels.shape[:2]
        xs = x[:, None].expand(n, t, *x.shape[1:]).reshape(n * t, *x.shape[1:])
        out = generator(xs, labels.reshape(n * t, -1).to(device)).float()
        out = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = out.reshape(n, t, *out.shape[1:])
        for k, face in enumerate(chunk):
            reg = regions(face.layout, face.image.shape[0])
            for j, name in enumerate(ATTRIBUTES):
                hits[name] += target_hit(measure(out[k, j], face.layout, reg), name, labels[k, j].numpy())
    total = len(faces)
    return {
        "overall": sum(hits.values()) / (total * len(ATTRIBUTES)),
        "per_target": {name: hits[name] / total for name in ATTRIBUTES},
        "faces": total,
    }


@torch.no_grad()
def saliency_mae(saliency: Callable, faces: Sequence[HeldOutFace], batch: int = 16) -> float:
    """Mean absolute error of the saliency map, resized to the image size as the engine does."""
    errors = []
    for s in range(0, len(faces), batch):
        chunk = faces[s : s + batch]
        x = torch.stack([(to_tensor(f.image) + 1) / 2 for f in chunk])
        size = x.shape[-1]
        m = saliency(x).float().cpu()
        if m.shape[-2:] != (size, size):
            shrink = m.shape[-1] > size
            m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        gt = torch.from_numpy(np.stack([f.mask for f in chunk]))[:, None]
        errors.append((m.clamp(0, 1) - gt).abs().flatten(1).mean(1))
    return float(torch.cat(errors).mean())


def protection_figures(
    models: ModelSet,
    faces: Sequence[HeldOutFace],
    epsilon: float = 0.05,
    methods: Sequence[str] = ("union-saliency", "pgd"),
    device: str = "cpu",
    seed: int = 0,
    batch: int = 16,
) -> dict:
    """Per method: success rate (MSE > 0.05), masked success rate, mean input PSNR and SSIM;
    and the success rate of uniform noise U(-eps, eps) (8-bit) for comparison."""
    engine = FaceShieldEngine(models, device=device)
    figures: dict = {"images": len(faces), "targets": len(models.attributes), "epsilon": epsilon}
    for method in methods:
        config = AttackConfig.for_method(method, epsilon=epsilon, seed=seed)
        rows, psnr, ssim = [], [], []
        for s in range(0, len(faces), batch):
            chunk = faces[s : s + batch]
            requests = [
                ProtectRequest(f.image, original_attributes=f.attributes.tolist(), seed=seed + s + k)
                for k, f in enumerate(chunk)
            ]
            for outcome in engine.protect(requests, config):
                assert outcome is not None  # None marks a cancelled item; nothing cancels here
                rows.append(outcome.targets)
                psnr.append(outcome.input.psnr)
                ssim.append(outcome.input.ssim)
        figures[method] = {
            "success_rate": success_rate(rows),
            "masked_success_rate": success_rate(rows, masked=True),
            "psnr": float(np.mean(psnr)),
            "ssim": float(np.mean(ssim)),
        }
        log.info("%s: success %.3f, PSNR %.2f dB", method, figures[method]["success_rate"], figures[method]["psnr"])
    rng = np.random.default_rng(seed)
    bound = int(np.floor(epsilon * 127.5 + 1e-9))
    rows = []
    for f in faces:
        levels = np.clip(np.rint(rng.uniform(-epsilon, epsilon, f.image.shape) * 127.5), -bound, bound)
        noisy = np.clip(f.image.astype(np.int32) + levels.astype(np.int32), 0, 255).astype(np.uint8)
        rows.append(engine.evaluate(f.image, noisy, original_attributes=f.attributes.tolist())[1])
    figures["uniform-noise"] = {
        "success_rate": success_rate(rows),
        "masked_success_rate": success_rate(rows, masked=True),
    }
    return figures
