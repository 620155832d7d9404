"""Image-to-image translators G(x): the CycleGAN/pix2pix ResNet generator and the pix2pix U-Net.

Both follow the module layout of the official junyanz/pytorch-CycleGAN-and-pix2pix `networks.py`
(and the `model.N.block.M` variant that vintagify's published CycleGAN uses), so their state
dicts load strictly. What the layouts leave to the checkpoint — width, depth, normalization,
biases — is read off the weights (`infer_translator`), never assumed.

Two deliberate differences from the training code, both so that a victim is a fixed, repeatable
function of its input:
- normalization always uses the input's own statistics (instance statistics). For instance
  norm that is what it computes anyway; for batch norm it is what the official test script does
  (it never calls `eval()` and runs batches of one), without reading or writing running buffers,
  so no image's result depends on its batch;
- dropout is off (an identity placeholder keeps the layer indices of the official layout).

Inputs and outputs are RGB in [-1, 1], (N, 3, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointMismatchError, InvalidInputError

NormKind = Literal["instance", "instance-affine", "batch"]
NORM_KINDS: tuple[str, ...] = ("instance", "instance-affine", "batch")
ARCHITECTURES = ("resnet", "unet")
_RUNNING = ("running_mean", "running_var", "num_batches_tracked")


class InstanceStatsNorm(nn.Module):
    """Normalizes each image and channel by its own mean and variance, then applies the affine
    weights where the checkpoint has them.

    `kind` "instance" has no parameters (junyanz's default `InstanceNorm2d(affine=False)`);
    "instance-affine" has weight and bias (vintagify); "batch" has weight, bias and the running
    buffers of `BatchNorm2d`, kept for key compatibility and never used (see the module text).
    """

    def __init__(self, num_features: int, kind: NormKind, eps: float = 1e-5):
        super().__init__()
        self.kind, self.eps = kind, eps
        if kind in ("instance-affine", "batch"):
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if kind == "batch":
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


@dataclass(frozen=True)
class TranslatorSpec:
    """What builds a translator: architecture and the constructor values read off a checkpoint.

    architecture: "resnet" or "unet"; ngf: width of the first layer; blocks: residual blocks
    (resnet) or downsamplings (unet, `num_downs`); norm: see `InstanceStatsNorm`; bias: whether
    the convolutions have biases; block_name: the residual block's inner Sequential ("conv_block"
    in the official layout, "block" in vintagify's); dropout: whether the official layout has a
    dropout slot in each residual block (it shifts the second convolution's index).
    """

    architecture: str
    ngf: int = 64
    blocks: int = 9
    norm: NormKind = "instance"
    bias: bool = True
    block_name: str = "conv_block"
    dropout: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> TranslatorSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        spec = cls(**known)
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise InvalidInputError("architecture", f"unknown translator {self.architecture!r}; choose resnet or unet")
        if self.norm not in NORM_KINDS:
            raise InvalidInputError("norm", f"unknown normalization {self.norm!r}; choose {', '.join(NORM_KINDS)}")
        if self.ngf < 1 or self.blocks < (1 if self.architecture == "resnet" else 5):
            raise InvalidInputError(
                "blocks", f"ngf {self.ngf} / blocks {self.blocks} do not make a {self.architecture}"
            )

    @property
    def multiple(self) -> int:
        """The resolution must be a multiple of this: 4 for the ResNet (two stride-2 steps), 2^num_downs for
        the U-Net (its bottleneck is 1x1)."""
        return 4 if self.architecture == "resnet" else 2**self.blocks

    def check_resolution(self, resolution: int, field: str = "resolution") -> None:
        if resolution < self.multiple or resolution % self.multiple:
            raise InvalidInputError(
                field,
                f"a {self.architecture} translator with {self.blocks} {'blocks' if self.architecture == 'resnet' else 'downsamplings'} "
                f"needs a resolution that is a multiple of {self.multiple}, got {resolution}",
            )


class ResnetBlock(nn.Module):
    """x + (pad-conv3-norm-ReLU-[dropout]-pad-conv3-norm)(x), reflection padding."""

    def __init__(self, dim: int, spec: TranslatorSpec):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=spec.bias),
            InstanceStatsNorm(dim, spec.norm),
            nn.ReLU(),
        ]
        if spec.dropout:
            layers.append(nn.Identity())  # the official Dropout(0.5), off: see the module text
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=spec.bias), InstanceStatsNorm(dim, spec.norm)]
        setattr(self, spec.block_name, nn.Sequential(*layers))
        self._name = spec.block_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self._name)(x)


# Layers of the ResNet generator's contracting head, before its residual blocks: reflection pad,
# conv 7x7, norm, ReLU, then two (stride-2 conv, norm, ReLU). attack/features.py cuts it there.
RESNET_CONTRACT_LAYERS = 10


class ResnetTranslator(nn.Module):
    """CycleGAN's ResNet generator: conv7, two stride-2 convs, `blocks` residual blocks, two stride-2
    transposed convs, conv7 + tanh, all in one `model` Sequential (the official key layout)."""

    def __init__(self, spec: TranslatorSpec):
        super().__init__()
        spec.validate()
        self.spec = spec
        ngf, norm, bias = spec.ngf, spec.norm, spec.bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7, bias=bias),
            InstanceStatsNorm(ngf, norm),
            nn.ReLU(),
        ]
        for i in range(2):
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias),
                InstanceStatsNorm(2 * c, norm),
                nn.ReLU(),
            ]
        assert len(layers) == RESNET_CONTRACT_LAYERS  # the head attack/features.py reads
        layers += [ResnetBlock(ngf * 4, spec) for _ in range(spec.blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                InstanceStatsNorm(c // 2, norm),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetBlock(nn.Module):
    """One level of pix2pix's U-Net: down, the inner levels, up, and the skip connection
    (concatenated, except at the outermost level)."""

    def __init__(self, outer: int, inner: int, spec: TranslatorSpec, sub: nn.Module | None = None, outermost=False):
        super().__init__()
        self.outermost = outermost
        norm, bias = spec.norm, spec.bias
        down = nn.Conv2d(3 if outermost else outer, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [down, sub, nn.ReLU(), nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1), nn.Tanh()]
        elif sub is None:  # innermost: no norm on the way down, nothing concatenated below
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), up, InstanceStatsNorm(outer, norm)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down, InstanceStatsNorm(inner, norm), sub]
            layers += [nn.ReLU(), up, InstanceStatsNorm(outer, norm)]
        self.model = nn.Sequential(*layers)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetTranslator(nn.Module):
    """pix2pix's U-Net with `spec.blocks` downsamplings (7: unet_128, 8: unet_256)."""

    def __init__(self, spec: TranslatorSpec):
        super().__init__()
        spec.validate()
        self.spec = spec
        ngf = spec.ngf
        block = UnetBlock(ngf * 8, ngf * 8, spec)
        for _ in range(spec.blocks - 5):
            block = UnetBlock(ngf * 8, ngf * 8, spec, block)
        for mult in (4, 2, 1):
            block = UnetBlock(ngf * mult, ngf * mult * 2, spec, block)
        self.model = UnetBlock(3, ngf, spec, block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_translator(spec: TranslatorSpec) -> ResnetTranslator | UnetTranslator:
    return (ResnetTranslator if spec.architecture == "resnet" else UnetTranslator)(spec)


# -- reading a checkpoint ---------------------------------------------------------------------
def _norm_kind(state: Mapping[str, torch.Tensor], prefix: str, conv_bias: bool) -> NormKind:
    has_weight = f"{prefix}.weight" in state
    if not has_weight:
        return "instance"
    # junyanz's instance norm is never affine, and its batch-norm networks have no conv biases.
    return "instance-affine" if conv_bias else "batch"


def infer_translator(state: Mapping[str, torch.Tensor], what: str = "translator checkpoint") -> TranslatorSpec:
    """The `TranslatorSpec` a state dict was saved from; `CheckpointMismatchError` naming the keys
    when it is neither layout."""
    if "model.model.0.weight" in state:
        return _infer_unet(state, what)
    if "model.1.weight" in state:
        return _infer_resnet(state, what)
    shown = sorted(state)[:6]
    raise CheckpointMismatchError(
        f"{what} (neither the ResNet layout, model.1.weight, nor the U-Net layout, model.model.0.weight)",
        unexpected=shown,
    )


def _infer_resnet(state: Mapping[str, torch.Tensor], what: str) -> TranslatorSpec:
    first = state["model.1.weight"]
    if first.ndim != 4 or tuple(first.shape[1:]) != (3, 7, 7):
        raise CheckpointMismatchError(
            what, mismatched=[f"model.1.weight {tuple(first.shape)} (expected (ngf, 3, 7, 7))"]
        )
    names = {k.split(".")[2] for k in state if k.count(".") >= 3 and k.split(".")[2] in ("conv_block", "block")}
    if len(names) != 1:
        raise CheckpointMismatchError(what, missing=["model.10.conv_block.1.weight (no residual blocks found)"])
    name = names.pop()
    blocks = sorted({int(k.split(".")[1]) for k in state if f".{name}." in k})
    bias = "model.1.bias" in state
    second = state.get(f"model.{blocks[0]}.{name}.5.weight")
    dropout = not (second is not None and second.ndim == 4)
    return TranslatorSpec(
        "resnet", int(first.shape[0]), len(blocks), _norm_kind(state, "model.2", bias), bias, name, dropout
    )


def _infer_unet(state: Mapping[str, torch.Tensor], what: str) -> TranslatorSpec:
    first = state["model.model.0.weight"]
    if first.ndim != 4 or first.shape[1] != 3:
        raise CheckpointMismatchError(
            what, mismatched=[f"model.model.0.weight {tuple(first.shape)} (expected (ngf, 3, 4, 4))"]
        )
    bias = "model.model.0.bias" in state
    prefix, depth = "model.model.1.model", 1
    while f"{prefix}.3.model.1.weight" in state:  # a middle level: its submodule sits at index 3
        prefix, depth = f"{prefix}.3.model", depth + 1
    if f"{prefix}.1.weight" not in state:
        raise CheckpointMismatchError(what, missing=[f"{prefix}.1.weight"])
    depth += 1  # the innermost level
    norm = _norm_kind(state, "model.model.1.model.2", bias)
    return TranslatorSpec("unet", int(first.shape[0]), depth, norm, bias, "conv_block", False)


def load_translator(
    state: Mapping[str, torch.Tensor], what: str = "translator checkpoint"
) -> ResnetTranslator | UnetTranslator:
    """A translator from a state dict, strictly: every key must fit, except normalization
    buffers a layout may or may not carry (instance norm's running statistics from 2018-era
    checkpoints, batch norm's `num_batches_tracked` from before PyTorch 0.4.1), which are dropped
    or filled, since they are never used."""
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    spec = infer_translator(state, what)
    model = build_translator(spec)
    expected = model.state_dict()
    for key in [k for k in state if k.rsplit(".", 1)[-1] in _RUNNING and k not in expected]:
        del state[key]  # instance norm's unused running statistics
    for key in [k for k in expected if k.endswith("num_batches_tracked") and k not in state]:
        state[key] = expected[key]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(
            f"{what} ({spec.architecture}, {spec.blocks} blocks)", missing, unexpected, mismatched
        )
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)
