"""TRACER (Lee, Shin & Han, AAAI 2022), state-dict compatible with the official
`TRACER-Efficient-N.pth` releases, runnable on CPU and exportable to ONNX.

Differences from the official code, none of which changes the function computed at inference:
the radial frequency mask and DFT matrices are precomputed (the official code rebuilds the mask
in Python loops and moves it to CUDA on every call); the FFT, `torch.quantile`, the custom
swish and in-place masking are replaced by exportable equivalents (`spectral`, `nn.SiLU`,
`torch.where`); dropout and drop-connect, identities at inference, are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import CheckpointMismatchError, InvalidInputError
from ..stargan import check_state_dict, load_state_dict_file, with_legacy_counters
from .attention import ObjectAttention, RFB_Block, UnionAttentionModule, aggregation
from .efficientnet import EfficientNetEncoder
from .variants import IMAGENET_MEAN, IMAGENET_STD, RFB_CHANNELS, TracerVariant, get_variant


class TRACER(nn.Module):
    """TRACER saliency network. Input: ImageNet-normalized RGB (N, 3, S, S), S divisible by 32
    (the variant's `input_size` is what the official weights were trained at; below about 96
    the edge module's radius-16 high-pass removes the whole spectrum of its 1/4-size map and the
    edge branch sees only rounding noise). Output of
    `forward`: (sigmoid(final_map), sigmoid(edge), (sigmoid(ds_map0..2))), as the official
    model; `saliency` returns only the first, which is the map the engine uses (docs/method.md §2).
    """

    def __init__(self, variant: TracerVariant | str | int = "TE-0", input_size: int | None = None):
        super().__init__()
        self.variant = variant if isinstance(variant, TracerVariant) else get_variant(variant)
        self.input_size = input_size or self.variant.input_size
        if self.input_size % 32 or self.input_size < 32:
            # The decoder upsamples stride-32 maps by exact factors of 2 onto stride-16 and -8 ones.
            raise InvalidInputError("input_size", f"TRACER needs a multiple of 32, got {self.input_size}")
        self.model = EfficientNetEncoder(self.variant, self.input_size)
        self.block_idx, self.channels = self.model.block_idx, self.model.channels
        c = RFB_CHANNELS
        self.rfb2 = RFB_Block(self.channels[1], c[0])
        self.rfb3 = RFB_Block(self.channels[2], c[1])
        self.rfb4 = RFB_Block(self.channels[3], c[2])
        self.agg = aggregation(c)
        self.ObjectAttention2 = ObjectAttention(self.channels[1], kernel_size=3)
        self.ObjectAttention1 = ObjectAttention(self.channels[0], kernel_size=3)

    def _final_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        features, edge = self.model(x)
        d0 = self.agg(self.rfb4(features[3]), self.rfb3(features[2]), self.rfb2(features[1]))  # stride 8
        d1 = self.ObjectAttention2(d0, features[1])
        d2 = self.ObjectAttention1(F.interpolate(d1, scale_factor=2, mode="bilinear"), features[0])  # stride 4
        ds0 = F.interpolate(d0, scale_factor=8, mode="bilinear")
        ds1 = F.interpolate(d1, scale_factor=8, mode="bilinear")
        ds2 = F.interpolate(d2, scale_factor=4, mode="bilinear")
        return (ds2 + ds1 + ds0) / 3, edge, (ds0, ds1, ds2)

    def saliency(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(final_map), (N, 1, S, S) in [0, 1]."""
        return torch.sigmoid(self._final_map(x)[0])

    def forward(self, x: torch.Tensor):
        final, edge, ds = self._final_map(x)
        edge = F.interpolate(edge, size=x.shape[-2:], mode="bilinear")
        return torch.sigmoid(final), torch.sigmoid(edge), tuple(torch.sigmoid(d) for d in ds)


def synthetic_images(batch: int, size: int, generator: torch.Generator, decay: float) -> torch.Tensor:
    """Multi-octave value noise in [0, 1]: octave k (2^k cells a side) weighs decay^k, so a small
    decay gives smooth blobs and a decay near 1 fine texture and sharp detail."""
    out = torch.zeros(batch, 3, size, size)
    cells, weight = 2, 1.0
    while cells <= size:
        noise = torch.rand(batch, 3, cells, cells, generator=generator) - 0.5
        out += weight * F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)
        cells, weight = cells * 2, weight * decay
    out -= out.amin(dim=(1, 2, 3), keepdim=True)
    return out / out.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def calibrate_batchnorm(model: TRACER, seed: int = 0) -> TRACER:
    """Set batch-norm running statistics from one seeded batch of synthetic images.

    For untrained models only (the embedded default, tests). With PyTorch's default init and
    identity statistics the activations shrink by orders of magnitude per stage and the output
    is a constant 0.5; with statistics measured on one kind of image, other images grow through
    the residual stages until the map saturates. A mixed batch (smooth, textured and white-noise
    images) keeps the network's output a varied map over that whole range, so comparisons
    between implementations mean something.

    The norms applied to globally pooled channels (union attention's `norm.0`) keep identity
    statistics: their per-batch variance over a handful of images says nothing useful.
    """
    size = model.input_size
    g = torch.Generator().manual_seed(seed)
    images = torch.cat(
        [
            synthetic_images(2, size, g, decay=0.5),
            synthetic_images(2, size, g, decay=0.8),
            torch.rand(1, 3, size, size, generator=g),
        ]
    )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pooled = {id(m.norm[0]) for m in model.modules() if isinstance(m, UnionAttentionModule)}
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in pooled]
    saved = [m.momentum for m in norms]
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    for m in norms:
        m.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.eval()
    for m in norms:
        m.train()  # only these update; everything else runs as at inference
    try:
        with torch.no_grad():
            model.saliency((images - mean) / std)
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
        model.eval()
    return model


def build_tracer(
    variant: TracerVariant | str | int = "TE-0",
    seed: int | None = None,
    input_size: int | None = None,
    calibrate: bool = False,
) -> TRACER:
    """A TRACER with PyTorch's default initialization (drawn from `seed` when given, without
    touching the global generator), in eval mode with gradients off; `calibrate` sets its
    batch-norm statistics from synthetic data (see `calibrate_batchnorm`)."""
    if seed is None:
        model = TRACER(variant, input_size)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TRACER(variant, input_size)
    if calibrate:
        calibrate_batchnorm(model, seed or 0)
    return model.eval().requires_grad_(False)


def half_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with floating tensors as float16: how FaceShield stores TRACER weights
    (checkpoints, a model set's `saliency.pt`), half the size of float32."""
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def load_tracer(
    source: str | Path | Mapping[str, torch.Tensor], variant: TracerVariant | str | int, input_size: int | None = None
) -> TRACER:
    """TRACER from an official checkpoint (path or state dict; a DataParallel `module.` prefix
    is stripped), loaded strictly. A checkpoint of another variant raises
    `CheckpointMismatchError` naming the keys that differ; BatchNorm's `num_batches_tracked`
    counters may be absent (files written before PyTorch 0.4.1). Float16 weights (`half_state_dict`)
    load as they are: `load_state_dict` copies them into the float32 parameters."""
    model = TRACER(variant, input_size)
    state_dict = load_state_dict_file(source) if isinstance(source, (str, Path)) else dict(source)
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    what = f"TRACER {model.variant.name} checkpoint"
    state_dict = with_legacy_counters(model, state_dict)  # with or without BatchNorm counters
    check_state_dict(model, state_dict, what)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # dtype trouble the shape check cannot see
        raise CheckpointMismatchError(f"{what} ({exc})") from None
    return model.eval().requires_grad_(False)
