"""TRACER in PyTorch: official checkpoint layout, strict loading, the exportable formulations
against the textbook operations they replace, and the model's output contract."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch

from faceshield.engine.errors import CheckpointMismatchError
from faceshield.engine.models.tracer import (
    VARIANTS,
    build_tracer,
    get_variant,
    load_tracer,
)
from faceshield.engine.models.tracer import attention as tracer_attention
from faceshield.engine.models.tracer.efficientnet import decoder_taps
from faceshield.engine.models.tracer.layers import same_padding
from faceshield.engine.models.tracer.spectral import (
    FrequencyHighPass,
    highpass_reference,
    quantile_lastdim,
    radial_lowpass_mask,
)

# ---------------------------------------------------------------------------------------------
# The official state-dict layout, written out from first principles.
#
# How this table was derived: by reading the official code (Karel911/TRACER: model/TRACER.py,
# model/EfficientNet.py, modules/att_modules.py, modules/conv_modules.py, util/effi_utils.py)
# and restating, module by module, which parameters and buffers each official class registers
# and with which shapes. It does not import this project's modules, so a naming or shape slip
# in them fails here. It was not checked against a downloaded `TRACER-Efficient-N.pth` (no
# network in CI): its authority is that reading, and every rule below names its source.
# ---------------------------------------------------------------------------------------------

# util/effi_utils.py: efficientnet() block strings for B0 (repeats, kernel, stride, expand, in, out)
OFFICIAL_B0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# util/effi_utils.py: efficientnet_params() (width, depth)
OFFICIAL_COEFFS = {
    0: (1.0, 1.0),
    1: (1.0, 1.1),
    2: (1.1, 1.2),
    3: (1.2, 1.4),
    4: (1.4, 1.8),
    5: (1.6, 2.2),
    6: (1.8, 2.6),
    7: (2.0, 3.1),
}
# util/effi_utils.py: get_model_shape()
OFFICIAL_SHAPE = {
    0: ([2, 4, 10, 15], [24, 40, 112, 320]),
    1: ([4, 7, 15, 22], [24, 40, 112, 320]),
    2: ([4, 7, 15, 22], [24, 48, 120, 352]),
    3: ([4, 7, 17, 25], [32, 48, 136, 384]),
    4: ([5, 9, 21, 31], [32, 56, 160, 448]),
    5: ([7, 12, 26, 38], [40, 64, 176, 512]),
    6: ([8, 14, 30, 44], [40, 72, 200, 576]),
    7: ([10, 17, 37, 54], [48, 80, 224, 640]),
}
RFB = [32, 64, 128]  # config.py: RFB_aggregated_channel


def _round_filters(filters: int, width: float) -> int:
    new = max(8, int(filters * width + 4) // 8 * 8)
    return new + 8 if new < 0.9 * filters * width else new


def official_key_shapes(arch: int) -> dict[str, tuple]:
    width, depth = OFFICIAL_COEFFS[arch]
    channels = OFFICIAL_SHAPE[arch][1]
    keys: dict[str, tuple] = {}

    def bn(p, c):  # nn.BatchNorm2d
        keys.update(
            {
                f"{p}.weight": (c,),
                f"{p}.bias": (c,),
                f"{p}.running_mean": (c,),
                f"{p}.running_var": (c,),
                f"{p}.num_batches_tracked": (),
            }
        )

    def basic(p, cin, cout, kh, kw=None):  # conv_modules.BasicConv2d: conv(bias=False), bn, selu
        keys[f"{p}.conv.weight"] = (cout, cin, kh, kw or kh)
        bn(f"{p}.bn", cout)

    def dwconv(p, c, k):  # conv_modules.DWConv(c, c): DWConv (groups=c), bn
        keys[f"{p}.DWConv.weight"] = (c, 1, k, k)
        bn(f"{p}.bn", c)

    def dwsconv(p, cin, cout, k):  # conv_modules.DWSConv(kernels_per_layer=1)
        keys[f"{p}.DWConv.weight"] = (cin, 1, k, k)
        bn(f"{p}.bn", cin)
        keys[f"{p}.PWConv.weight"] = (cout, cin, 1, 1)
        bn(f"{p}.bn2", cout)

    def uam(p, c, spatial):  # att_modules.UnionAttentionModule: bn, norm=[BN, Dropout3d], q/k/v, fc
        bn(f"{p}.bn", c)
        bn(f"{p}.norm.0", c)
        for n in ("channel_q", "channel_k", "channel_v", "fc"):
            keys[f"{p}.{n}.weight"] = (c, c, 1, 1)
        if spatial:
            for n in ("spatial_q", "spatial_k", "spatial_v"):
                keys[f"{p}.{n}.weight"] = (1, c, 1, 1)

    def pyramid(p, c, out_each):  # DWConv1..4 = Sequential(DWConv(k = 1, 3, 3, 3), BasicConv2d 1x1)
        for i, k in enumerate((1, 3, 3, 3), start=1):
            dwconv(f"{p}.DWConv{i}.0", c, k)
            basic(f"{p}.DWConv{i}.1", c, out_each, 1)

    # EfficientNet (model/EfficientNet.py), under TRACER.model; no _conv_head / _fc is built.
    e = "model"
    stem = _round_filters(32, width)
    keys[f"{e}._conv_stem.weight"] = (stem, 3, 3, 3)
    bn(f"{e}._bn0", stem)
    idx = 0
    for repeats, k, _stride, expand, fin, fout in OFFICIAL_B0_BLOCKS:
        fin, fout = _round_filters(fin, width), _round_filters(fout, width)
        for r in range(int(math.ceil(depth * repeats))):
            inp = fin if r == 0 else fout
            mid = inp * expand
            p = f"{e}._blocks.{idx}"
            if expand != 1:
                keys[f"{p}._expand_conv.weight"] = (mid, inp, 1, 1)
                bn(f"{p}._bn0", mid)
            keys[f"{p}._depthwise_conv.weight"] = (mid, 1, k, k)
            bn(f"{p}._bn1", mid)
            sq = max(1, int(inp * 0.25))
            keys.update(
                {
                    f"{p}._se_reduce.weight": (sq, mid, 1, 1),
                    f"{p}._se_reduce.bias": (sq,),
                    f"{p}._se_expand.weight": (mid, sq, 1, 1),
                    f"{p}._se_expand.bias": (mid,),
                }
            )
            keys[f"{p}._project_conv.weight"] = (fout, mid, 1, 1)
            bn(f"{p}._bn2", fout)
            idx += 1
    # Frequency_Edge_Module(radius, channels[0]) (att_modules.py)
    f, c0 = f"{e}.Frequency_Edge_Module1", channels[0]
    uam(f"{f}.UAM", c0, spatial=False)
    dwsconv(f"{f}.DWSConv", c0, c0, 3)
    pyramid(f, c0, c0 // 4)
    basic(f"{f}.conv", c0, 1, 1)
    # RFB blocks (att_modules.RFB_Block)
    for name, cin, cout in (
        ("rfb2", channels[1], RFB[0]),
        ("rfb3", channels[2], RFB[1]),
        ("rfb4", channels[3], RFB[2]),
    ):
        basic(f"{name}.branch0.0", cin, cout, 1)
        for b, kk in ((1, 3), (2, 5), (3, 7)):
            basic(f"{name}.branch{b}.0", cin, cout, 1)
            basic(f"{name}.branch{b}.1", cout, cout, 1, kk)
            basic(f"{name}.branch{b}.2", cout, cout, kk, 1)
            basic(f"{name}.branch{b}.3", cout, cout, 3)
        basic(f"{name}.conv_cat", 4 * cout, cout, 3)
        basic(f"{name}.conv_res", cin, cout, 1)
    # aggregation(channel=RFB)
    a0, a1, a2 = RFB
    for name, cin, cout in (
        ("conv_upsample1", a2, a1),
        ("conv_upsample2", a2, a0),
        ("conv_upsample3", a1, a0),
        ("conv_upsample4", a2, a2),
        ("conv_upsample5", a2 + a1, a2 + a1),
        ("conv_concat2", a2 + a1, a2 + a1),
        ("conv_concat3", a0 + a1 + a2, a0 + a1 + a2),
    ):
        basic(f"agg.{name}", cin, cout, 3)
    uam("agg.UAM", a0 + a1 + a2, spatial=True)
    # ObjectAttention(channels[1]) and (channels[0])
    for name, c in (("ObjectAttention2", channels[1]), ("ObjectAttention1", channels[0])):
        dwsconv(f"{name}.DWSConv", c, c // 2, 3)
        pyramid(name, c // 2, c // 8)
        basic(f"{name}.conv1", c // 2, 1, 1)
    return keys


def official_like_checkpoint(arch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """What an official release file holds: a DataParallel state dict ("module." prefix)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in official_key_shapes(arch).items():
        if k.endswith("num_batches_tracked"):
            sd[f"module.{k}"] = torch.tensor(1000)
        elif k.endswith("running_var"):
            sd[f"module.{k}"] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[f"module.{k}"] = torch.randn(shape, generator=g) * 0.05
    return sd


# ------------------------------------------------------------------------------ layout, loading


@pytest.mark.parametrize("arch", [0, 5])
def test_official_checkpoint_loads_strictly(arch, tmp_path):
    sd = official_like_checkpoint(arch)
    path = tmp_path / f"TRACER-Efficient-{arch}.pth"
    torch.save(sd, path)
    model = load_tracer(path, f"TE-{arch}")
    own = model.state_dict()
    assert set(own) == {k[len("module.") :] for k in sd}
    for k in (
        "model._blocks.3._depthwise_conv.weight",
        "agg.UAM.spatial_v.weight",
        "ObjectAttention1.conv1.bn.running_var",
    ):
        assert torch.equal(own[k], sd[f"module.{k}"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("counters", ["absent", "present"])
def test_checkpoint_loads_whatever_its_batchnorm_counters(counters):
    """Files written before PyTorch 0.4.1 have no `num_batches_tracked`; both kinds load."""
    sd = official_like_checkpoint(0)
    if counters == "absent":
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    model = load_tracer(sd, "TE-0")
    own = model.state_dict()
    assert all(torch.equal(own[k[len("module.") :]], v) for k, v in sd.items())
    del sd["module.agg.UAM.fc.weight"]
    with pytest.raises(CheckpointMismatchError) as err:
        load_tracer(sd, "TE-0")
    assert err.value.missing == ["agg.UAM.fc.weight"]


def test_other_variants_checkpoint_is_refused_naming_keys():
    with pytest.raises(CheckpointMismatchError) as err:
        load_tracer(official_like_checkpoint(5), "TE-0")
    e = err.value
    assert any(k.startswith("model._conv_stem.weight") for k in e.mismatched)  # 48 vs 32 stem filters
    assert "model._blocks.38._project_conv.weight" in e.unexpected  # TE-5 has 39 blocks, TE-0 16
    assert "TE-0" in str(e) and "model._conv_stem.weight" in str(e)


def test_checkpoint_missing_a_key_is_refused():
    sd = official_like_checkpoint(0)
    del sd["module.agg.UAM.fc.weight"]
    with pytest.raises(CheckpointMismatchError) as err:
        load_tracer(sd, "TE-0")
    assert err.value.missing == ["agg.UAM.fc.weight"]


@pytest.mark.parametrize("arch", range(8))
def test_decoder_taps_are_the_official_table(arch):
    block_idx, channels = decoder_taps(get_variant(arch))
    assert (list(block_idx), list(channels)) == OFFICIAL_SHAPE[arch]
    v = VARIANTS[f"TE-{arch}"]
    assert (list(v.block_idx), list(v.channels)) == OFFICIAL_SHAPE[arch]
    assert v.input_size == {0: 320, 1: 320, 2: 352, 3: 384, 4: 448, 5: 512, 6: 576, 7: 640}[arch]


def test_same_padding_is_fixed_by_the_native_resolution():
    """The official backbone pads for EfficientNet's native size (456 for B5), not the input:
    B5's stage-4 stride-2 3x3 sees 57 there (pad 1 | 1) though it sees 64 at input 512 (0 | 1)."""
    assert same_padding(57, 3, 2) == (1, 1)
    assert same_padding(64, 3, 2) == (0, 1)
    assert same_padding(29, 5, 2) == (2, 2)
    model = build_tracer("TE-5", seed=0)
    conv = model.model._blocks[13]._depthwise_conv  # first block of stage 4 (3 + 5 + 5 before it)
    assert conv.stride == (2, 2) and conv.kernel_size == (3, 3)
    assert conv.pad is None and conv.padding == (1, 1)
    te0 = build_tracer("TE-0", seed=0).model._blocks[5]._depthwise_conv  # B0, stage 4 at 28: 0 | 1
    assert te0.pad == (0, 1, 0, 1)


# ---------------------------------------------------------------- exportable == textbook


@pytest.mark.parametrize(
    ("shape", "radius"),
    [((2, 24, 80, 80), 16), ((1, 40, 128, 128), 16), ((2, 3, 17, 17), 5), ((1, 4, 20, 24), 6), ((1, 2, 9, 9), 0)],
)
def test_highpass_matches_torch_fft(shape, radius):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g) * 3
    want = highpass_reference(x, radius)
    for hp in (FrequencyHighPass(radius, shape[-2:]), FrequencyHighPass(radius)):  # precomputed, on demand
        assert (hp(x) - want).abs().max().item() < 1e-5


def test_radial_mask_matches_the_official_loop():
    """The official mask: 1.0 where sqrt((i - rows/2)^2 + (j - rows/2)^2) < r (rows for both)."""
    for rows, cols, r in ((80, 80, 16), (9, 9, 3), (6, 10, 2.5)):
        want = np.zeros((rows, cols), dtype=np.float32)
        for i in range(rows):
            for j in range(cols):
                want[i, j] = 1.0 if np.sqrt((i - rows / 2) ** 2 + (j - rows / 2) ** 2) < r else 0
        assert np.array_equal(radial_lowpass_mask(rows, cols, r).numpy(), want)


@pytest.mark.parametrize("n", [2, 3, 24, 40, 224])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.93, 1.0])
def test_quantile_matches_torch_quantile(n, q):
    g = torch.Generator().manual_seed(n)
    x = torch.rand(4, n, generator=g)
    x[0, : n // 2] = x[0, 0]  # ties
    assert (quantile_lastdim(x, q) - torch.quantile(x, q, dim=-1, keepdim=True)).abs().max().item() < 1e-5


def test_model_equals_the_textbook_formulation():
    """Swap the exportable high-pass and quantile for torch.fft and torch.quantile inside the
    whole network: the saliency map is unchanged."""
    model = build_tracer("TE-0", seed=3, input_size=128, calibrate=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 128, 128, generator=g)
    with torch.no_grad():
        ours = model.saliency(x)

        def fft_highpass(self, t):
            return highpass_reference(t, self.radius)

        def torch_quantile(t, q):
            return torch.quantile(t, q, dim=-1, keepdim=True)

        with (
            mock.patch.object(FrequencyHighPass, "forward", fft_highpass),
            mock.patch.object(tracer_attention, "quantile_lastdim", torch_quantile),
        ):
            textbook = model.saliency(x)
    assert (ours - textbook).abs().max().item() < 1e-5
    assert ours.std().item() > 0.01  # a varied map, not a saturated constant


def test_swish_is_silu():
    x = torch.linspace(-8, 8, 101)
    assert torch.allclose(torch.nn.SiLU()(x), x * torch.sigmoid(x), atol=1e-7)


# ------------------------------------------------------------------------ output contract


def test_forward_returns_the_official_outputs_on_cpu():
    model = build_tracer("TE-0", seed=0, input_size=128, calibrate=True)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        final, edge, deep = model(x)
        alone = model.saliency(x[1:])
    assert final.shape == edge.shape == (2, 1, 128, 128)
    assert len(deep) == 3 and all(d.shape == (2, 1, 128, 128) for d in deep)
    for t in (final, edge, *deep):
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    assert torch.allclose(final[1:], alone, atol=1e-5)  # batch composition does not matter


def test_unknown_variant_is_refused():
    from faceshield.engine.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="TE-8"):
        get_variant("TE-8")
    assert get_variant("te5") is get_variant(5) is VARIANTS["TE-5"]


def test_input_size_must_be_a_multiple_of_32():
    from faceshield.engine.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="multiple of 32") as err:
        build_tracer("TE-0", input_size=100)
    assert err.value.field == "input_size"
