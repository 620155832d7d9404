"""A surrogate generator trained here on CelebA faces: a victim of our own making (issue #21).

Transfer needs variety in the set the attack aims at: a perturbation fitted to two generators
carries poorly to a third (benchmarks/results/held-out.md). Nothing published gives more face
generators with usable weights and licences, so `benchmarks/train_surrogate.py` trains one: a
small image-to-image network in the shape of the feed-forward translators (Johnson et al., ECCV
2016: a 9x9 convolution, two stride-2 convolutions, residual blocks at a quarter of the size,
two upsampling convolutions back; instance norm in the residual blocks), taught to give back
the face it is shown (L1), 128 px, in generator space [-1, 1]. Its one edit is that
reconstruction; its clean reconstructions must still pass dlib's check as the person, or the
identity objective has nothing to break in them (the training report measures that).

Trained on CelebA aligned faces 000207-000506 (`TRAIN_START`..: never the faces the benchmarks
measure, which are 000007-000206). CelebA's terms (non-commercial research use) carry over to
the weights: this is an EVALUATION-ONLY victim, like the VAE, never a default or a shipped file.
The weights live wherever the caller wrote them (`--out` of the training script), not in the repo.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..models.victims import Unconditional, Victim

NAME = "celeba-ae"
RESOLUTION = 128
TRAIN_START, TRAIN_COUNT = 200, 300  # faces 000207-000506 of the wheel; 000007-000206 are measured
WIDTH = 32  # channels of the first layer; doubled at each stride-2 convolution
BLOCKS = 4


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, padding_mode="reflect")]
    if norm:
        layers.append(nn.InstanceNorm2d(c_out, affine=True))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """Instance norm inside the residual branch only: the stream around it keeps each image's own
    brightness and colour, which instance norm in the encoder would throw away (a style network
    may lose them; a network that must give the face back may not: trained with instance norm in
    every layer, the reconstruction stalled at an L1 of 0.15)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(c, c, 3, norm=True),
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FaceTranslator(nn.Module):
    """(N, 3, R, R) in [-1, 1] -> (N, 3, R, R) in [-1, 1]; R a multiple of 4."""

    def __init__(self, width: int = WIDTH, blocks: int = BLOCKS):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _conv(3, w, 9),
            _conv(w, 2 * w, 3, 2),
            _conv(2 * w, 4 * w, 3, 2),
            *(_Residual(4 * w) for _ in range(blocks)),
            nn.Upsample(scale_factor=2, mode="nearest"),  # upsample-then-convolve: no checkerboard
            _conv(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(2 * w, w, 3),
            nn.Conv2d(w, 3, 9, padding=4, padding_mode="reflect"),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def load_surrogate(path: str | Path) -> FaceTranslator:
    """The trained network from `train_surrogate.py`'s file (a state dict), in eval mode."""
    model = FaceTranslator()
    model.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
    return model.eval().requires_grad_(False)


def surrogate_victim(path: str | Path) -> Victim:
    """The surrogate as an evaluation-only translator victim "celeba-ae" at 128 px."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Victim(
        name=NAME,
        kind="translator",
        generator=Unconditional(load_surrogate(path)),
        resolution=RESOLUTION,
        sha256=digest,
        description="face translator trained here on CelebA faces 000207-000506 (benchmarks/train_surrogate.py): "
        "a surrogate for transfer, EVALUATION ONLY (CelebA: non-commercial research use)",
        provenance={
            "trained_by": "FaceShield (benchmarks/train_surrogate.py)",
            "trained_on": "CelebA aligned 000207-000506 from the felonfinder 1.0.3 wheel",
            "license": "CelebA: non-commercial research use only",
            "evaluation_only": True,
        },
    )
