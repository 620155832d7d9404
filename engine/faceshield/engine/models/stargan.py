"""StarGAN generator, state-dict compatible with the official release (Choi et al., CVPR 2018).

Layer order and module names follow the official `model.py`, so an official `200000-G.ckpt`
(a bare state dict) loads with ``strict=True`` (written by PyTorch 0.4.0, it lacks the norms'
`num_batches_tracked` counters, which are filled in; see `with_legacy_counters`). One deliberate difference: normalization always
uses per-instance statistics. The official test code never calls ``eval()``, so its published
results use instance statistics (and, as a side effect, overwrite the running buffers on every
call); here the buffers are kept for key compatibility but never read or written, so results do
not depend on batch composition or call history.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointMismatchError, ModelLoadError


class InstanceNorm2d(nn.InstanceNorm2d):
    """`nn.InstanceNorm2d(affine=True, track_running_stats=True)` that always normalizes with the
    input's own statistics and leaves the running buffers untouched."""

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class ResidualBlock(nn.Module):
    """x + (conv3-IN-ReLU-conv3-IN)(x)."""

    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c): image x in [-1, 1] (N, 3, H, W) and labels c (N, c_dim) -> edited image in [-1, 1].

    H and W must be multiples of 4 (two stride-2 downsamplings).
    """

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        self.conv_dim, self.c_dim, self.repeat_num = conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            InstanceNorm2d(conv_dim),
            nn.ReLU(inplace=True),
        ]
        dim = conv_dim
        for _ in range(2):  # down-sampling
            layers += [
                nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False),
                InstanceNorm2d(dim * 2),
                nn.ReLU(inplace=True),
            ]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
                InstanceNorm2d(dim // 2),
                nn.ReLU(inplace=True),
            ]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, c], dim=1))


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Read (conv_dim, c_dim, repeat_num) off an official-layout state dict."""
    try:
        first = state_dict["main.0.weight"]
    except KeyError:
        raise CheckpointMismatchError("StarGAN checkpoint", missing=["main.0.weight"]) from None
    if first.ndim != 4 or first.shape[1] <= 3:
        raise CheckpointMismatchError("StarGAN checkpoint", mismatched=[f"main.0.weight {tuple(first.shape)}"])
    blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("main.") and ".main." in k}
    return {"conv_dim": int(first.shape[0]), "c_dim": int(first.shape[1]) - 3, "repeat_num": len(blocks)}


def with_legacy_counters(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state_dict` with every norm layer's missing `num_batches_tracked` counter filled in.

    PyTorch 0.4.1 added that buffer to batch and instance norms; checkpoints written before it
    (the official StarGAN release, 2018, PyTorch 0.4.0) do not have it. The counter only steers
    the running-average momentum during training, which inference never uses, so the model's
    own initial value (0) is put in its place. Nothing else is filled in: every other key is
    still checked strictly by `check_state_dict`.
    """
    filled = dict(state_dict)
    for name, module in model.named_modules():
        counter = getattr(module, "num_batches_tracked", None)
        if isinstance(module, nn.modules.batchnorm._NormBase) and counter is not None:
            key = f"{name}.num_batches_tracked" if name else "num_batches_tracked"
            filled.setdefault(key, counter.detach().clone())
    return filled


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise `CheckpointMismatchError` naming every missing, unexpected or misshapen key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(what, missing, unexpected, mismatched)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `torch.save`d state dict safely (``weights_only=True``); strip a DataParallel prefix."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist or is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle of another kind, random bytes
        raise ModelLoadError(f"{path} is not a readable PyTorch checkpoint ({exc.__class__.__name__}: {exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path} does not hold a state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_generator(source: str | Path | Mapping[str, torch.Tensor], c_dim: int | None = None) -> Generator:
    """Build a `Generator` from an official checkpoint (path or state dict), strictly.

    The architecture is read off the weights; `c_dim`, when given, must agree with them. A
    checkpoint without the norms' `num_batches_tracked` counters (PyTorch 0.4.0) loads too.
    """
    state_dict = load_state_dict_file(source) if isinstance(source, (str, Path)) else dict(source)
    arch = infer_architecture(state_dict)
    if c_dim is not None and arch["c_dim"] != c_dim:
        raise CheckpointMismatchError(
            "StarGAN checkpoint",
            mismatched=[f"main.0.weight: {arch['c_dim']} label channels, expected c_dim={c_dim}"],
        )
    model = Generator(**arch)
    state_dict = with_legacy_counters(model, state_dict)
    check_state_dict(model, state_dict, "StarGAN checkpoint")
    model.load_state_dict(state_dict, strict=True)
    return model.eval().requires_grad_(False)
