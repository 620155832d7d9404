"""Translator victims: the CycleGAN/pix2pix layouts load strictly and compute what the layout
says; the TorchScript artifact is the eager model; bad checkpoints are refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceshield.engine.errors import CheckpointMismatchError, InvalidInputError
from faceshield.engine.models.torchscript import load_generator_artifact
from faceshield.engine.models.translator import TranslatorSpec, build_translator, infer_translator, load_translator
from faceshield.engine.models.victims import Unconditional
from faceshield.engine.modelsets import export_translator


def seeded(spec: TranslatorSpec, seed: int = 0) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_translator(spec)
        for p in model.parameters():  # non-trivial affine weights, so a wrong norm shows
            p.data.add_(torch.randn_like(p) * 0.05)
    return model.eval()


# -- reference forwards written from the published layouts, independently of the model code ---
def _norm(x, sd, key):
    w, b = sd.get(f"{key}.weight"), sd.get(f"{key}.bias")
    return F.instance_norm(x, weight=w, bias=b, eps=1e-5)


def reference_resnet(sd: dict, x: torch.Tensor, name: str, n_blocks: int, dropout: bool = False) -> torch.Tensor:
    """junyanz's ResnetGenerator / vintagify's: reflect-pad 3, conv7, norm, ReLU; two stride-2 conv3;
    residual blocks (reflect-pad 1, conv3, norm, ReLU, [dropout], reflect-pad 1, conv3, norm);
    two stride-2 transposed conv3 (output padding 1); reflect-pad 3, conv7, tanh."""
    h = F.relu(
        _norm(F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), sd["model.1.weight"], sd.get("model.1.bias")), sd, "model.2")
    )
    for i in (4, 7):
        h = F.relu(
            _norm(
                F.conv2d(h, sd[f"model.{i}.weight"], sd.get(f"model.{i}.bias"), stride=2, padding=1),
                sd,
                f"model.{i + 1}",
            )
        )
    second = 6 if dropout else 5
    for i in range(10, 10 + n_blocks):
        p = f"model.{i}.{name}"
        r = F.relu(
            _norm(
                F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), sd[f"{p}.1.weight"], sd.get(f"{p}.1.bias")), sd, f"{p}.2"
            )
        )
        r = _norm(
            F.conv2d(F.pad(r, (1,) * 4, mode="reflect"), sd[f"{p}.{second}.weight"], sd.get(f"{p}.{second}.bias")),
            sd,
            f"{p}.{second + 1}",
        )
        h = h + r
    j = 10 + n_blocks
    for i in (j, j + 3):
        h = F.conv_transpose2d(
            h, sd[f"model.{i}.weight"], sd.get(f"model.{i}.bias"), stride=2, padding=1, output_padding=1
        )
        h = F.relu(_norm(h, sd, f"model.{i + 1}"))
    h = F.conv2d(F.pad(h, (3,) * 4, mode="reflect"), sd[f"model.{j + 7}.weight"], sd[f"model.{j + 7}.bias"])
    return torch.tanh(h)


def reference_unet(sd: dict, x: torch.Tensor, depth: int) -> torch.Tensor:
    """pix2pix's UnetGenerator: nested levels of [LeakyReLU, conv4 s2, norm] down and [ReLU,
    transposed conv4 s2, norm] up, the level's input concatenated to its output."""

    def level(h, prefix, d):
        if d == 1:  # outermost
            down = F.conv2d(h, sd[f"{prefix}.0.weight"], sd.get(f"{prefix}.0.bias"), stride=2, padding=1)
            inner = level(down, f"{prefix}.1.model", 2)
            up = F.conv_transpose2d(
                F.relu(inner), sd[f"{prefix}.3.weight"], sd[f"{prefix}.3.bias"], stride=2, padding=1
            )
            return torch.tanh(up)
        down = F.conv2d(F.leaky_relu(h, 0.2), sd[f"{prefix}.1.weight"], sd.get(f"{prefix}.1.bias"), stride=2, padding=1)
        if d == depth:  # innermost
            up = F.conv_transpose2d(
                F.relu(down), sd[f"{prefix}.3.weight"], sd.get(f"{prefix}.3.bias"), stride=2, padding=1
            )
            return torch.cat([h, _norm(up, sd, f"{prefix}.4")], 1)
        inner = level(_norm(down, sd, f"{prefix}.2"), f"{prefix}.3.model", d + 1)
        up = F.conv_transpose2d(
            F.relu(inner), sd[f"{prefix}.5.weight"], sd.get(f"{prefix}.5.bias"), stride=2, padding=1
        )
        return torch.cat([h, _norm(up, sd, f"{prefix}.6")], 1)

    return level(x, "model.model", 1)


RESNETS = [
    TranslatorSpec("resnet", ngf=8, blocks=3, norm="instance", bias=True, block_name="conv_block"),  # junyanz default
    TranslatorSpec("resnet", ngf=8, blocks=2, norm="instance-affine", bias=True, block_name="block"),  # vintagify
    TranslatorSpec("resnet", ngf=8, blocks=2, norm="batch", bias=False, block_name="conv_block", dropout=True),
]


@pytest.mark.parametrize("spec", RESNETS, ids=lambda s: f"{s.norm}-{s.block_name}-dropout{s.dropout}")
def test_resnet_layouts_load_strictly_and_match_the_reference(spec):
    sd = seeded(spec).state_dict()
    model = load_translator(sd)
    assert infer_translator(sd) == spec
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref = reference_resnet(
        {k: v for k, v in sd.items() if "running" not in k}, x, spec.block_name, spec.blocks, spec.dropout
    )
    torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm, bias", [("batch", False), ("instance", True)])
def test_unet_loads_strictly_and_matches_the_reference(norm, bias):
    spec = TranslatorSpec("unet", ngf=4, blocks=6, norm=norm, bias=bias)
    sd = seeded(spec).state_dict()
    assert infer_translator(sd) == TranslatorSpec("unet", ngf=4, blocks=6, norm=norm, bias=bias)
    model = load_translator(sd)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    torch.testing.assert_close(model(x), reference_unet(sd, x, 6), atol=1e-5, rtol=0)


def test_instance_norm_statistics_are_per_image_whatever_the_batch():
    model = load_translator(seeded(RESNETS[2]).state_dict())  # batch norm: running buffers never used
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(model(x)[1:2], model(x[1:2]), atol=1e-5, rtol=0)  # batch statistics: ~1e-1


def test_old_checkpoints_with_instance_norm_buffers_or_without_counters_load():
    spec = RESNETS[0]
    sd = seeded(spec).state_dict()
    with_buffers = dict(sd)
    with_buffers["model.2.running_mean"] = torch.zeros(8)  # 2018-era InstanceNorm(track_running_stats=True)
    with_buffers["model.2.running_var"] = torch.ones(8)
    load_translator(with_buffers)
    bn = seeded(RESNETS[2]).state_dict()
    load_translator({k: v for k, v in bn.items() if not k.endswith("num_batches_tracked")})
    load_translator({f"module.{k}": v for k, v in sd.items()})  # DataParallel


def test_other_layouts_are_refused_naming_keys():
    sd = seeded(RESNETS[0]).state_dict()
    with pytest.raises(CheckpointMismatchError, match="neither the ResNet layout"):
        load_translator({"main.0.weight": torch.zeros(8, 8, 7, 7)})  # a StarGAN
    broken = {k: v for k, v in sd.items() if k != "model.7.weight"}
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: model\.7\.weight"):
        load_translator(broken)
    grown = dict(sd)
    grown["model.4.weight"] = torch.zeros(17, 8, 3, 3)
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        load_translator(grown)


def test_torchscript_artifact_equals_eager_in_outputs_and_input_gradients():
    model = load_translator(seeded(RESNETS[1]).state_dict())
    data, diff = export_translator(model, 32)
    assert diff <= 1e-4
    scripted, meta = load_generator_artifact(data)
    assert meta["architecture"] == "translator"
    for size in (32, 48):  # the trace is not tied to its example resolution
        x = (torch.rand(2, 3, size, size) * 2 - 1).requires_grad_(True)
        x2 = x.detach().clone().requires_grad_(True)
        a, b = Unconditional(model)(x, torch.zeros(2, 0)), Unconditional(scripted)(x2, torch.zeros(2, 0))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        (ga,) = torch.autograd.grad(a.square().sum(), x)
        (gb,) = torch.autograd.grad(b.square().sum(), x2)
        torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-4)


def test_resolution_must_fit_the_architecture():
    RESNETS[0].check_resolution(36)
    with pytest.raises(InvalidInputError, match="multiple of 4"):
        RESNETS[0].check_resolution(30)
    unet = TranslatorSpec("unet", ngf=4, blocks=7)
    with pytest.raises(InvalidInputError, match="multiple of 128"):
        unet.check_resolution(96)
