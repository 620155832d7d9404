"""StarGAN generator: official checkpoint layout, strict loading, instance statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from faceshield.engine.errors import CheckpointMismatchError, ModelLoadError
from faceshield.engine.models.stargan import load_generator


def official_key_shapes(conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> dict[str, tuple]:
    """Every key and shape of the official `Generator(64, 5, 6)` state dict, written out from
    docs/method.md §2 (not from this project's module), so a layout change here is caught."""
    shapes: dict[str, tuple] = {}

    def norm(prefix: str, ch: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (ch,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["main.0.weight"] = (conv_dim, 3 + c_dim, 7, 7)
    norm("main.1", conv_dim)
    d = conv_dim
    for i in (3, 6):
        shapes[f"main.{i}.weight"] = (d * 2, d, 4, 4)
        norm(f"main.{i + 1}", d * 2)
        d *= 2
    for b in range(repeat_num):
        i = 9 + b
        shapes[f"main.{i}.main.0.weight"] = (d, d, 3, 3)
        norm(f"main.{i}.main.1", d)
        shapes[f"main.{i}.main.3.weight"] = (d, d, 3, 3)
        norm(f"main.{i}.main.4", d)
    i = 9 + repeat_num
    for _ in range(2):
        shapes[f"main.{i}.weight"] = (d, d // 2, 4, 4)  # ConvTranspose2d: (in, out, k, k)
        norm(f"main.{i + 1}", d // 2)
        d //= 2
        i += 3
    shapes[f"main.{i}.weight"] = (3, d, 7, 7)
    assert i == 15 + repeat_num  # then the Tanh, no parameters (main.21, main.22 for 6 blocks)
    return shapes


def official_like_state_dict(seed: int = 0, **arch) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in official_key_shapes(**arch).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(200000)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.05
    return sd


def reference_forward(
    sd: dict[str, torch.Tensor], x: torch.Tensor, c: torch.Tensor, repeat_num: int = 6
) -> torch.Tensor:
    """StarGAN's forward written with functional ops straight from the state dict, with instance
    statistics (the official test code never calls eval())."""

    def inorm(h, p):
        return F.instance_norm(h, weight=sd[f"{p}.weight"], bias=sd[f"{p}.bias"])

    h = torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
    h = F.relu(inorm(F.conv2d(h, sd["main.0.weight"], padding=3), "main.1"))
    for i in (3, 6):
        h = F.relu(inorm(F.conv2d(h, sd[f"main.{i}.weight"], stride=2, padding=1), f"main.{i + 1}"))
    for b in range(repeat_num):
        p = f"main.{9 + b}.main"
        r = F.relu(inorm(F.conv2d(h, sd[f"{p}.0.weight"], padding=1), f"{p}.1"))
        h = h + inorm(F.conv2d(r, sd[f"{p}.3.weight"], padding=1), f"{p}.4")
    i = 9 + repeat_num
    for _ in range(2):
        h = F.relu(inorm(F.conv_transpose2d(h, sd[f"main.{i}.weight"], stride=2, padding=1), f"main.{i + 1}"))
        i += 3
    return torch.tanh(F.conv2d(h, sd[f"main.{i}.weight"], padding=3))


def test_official_layout_loads_strictly_and_matches_reference_forward(tmp_path):
    sd = official_like_state_dict()
    path = tmp_path / "200000-G.ckpt"
    torch.save(sd, path)  # the official file is a bare state dict
    g = load_generator(path)
    assert (g.conv_dim, g.c_dim, g.repeat_num) == (64, 5, 6)
    assert set(g.state_dict()) == set(sd)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    with torch.no_grad():
        ours, ref = g(x, c), reference_forward(sd, x, c)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=0)


def legacy_state_dict(**arch) -> dict[str, torch.Tensor]:
    """What the official 2018 release holds: written by PyTorch 0.4.0, which had no
    `num_batches_tracked` counters in its norm layers."""
    return {k: v for k, v in official_like_state_dict(**arch).items() if not k.endswith("num_batches_tracked")}


def test_legacy_checkpoint_without_batch_counters_loads_strictly(tmp_path):
    sd = legacy_state_dict()
    assert len(official_like_state_dict()) - len(sd) == 17  # 3 + 2 x 6 blocks + 2 norms
    path = tmp_path / "200000-G.ckpt"
    torch.save(sd, path, _use_new_zipfile_serialization=False)  # the pre-1.6 file format too
    g = load_generator(path)
    own = g.state_dict()
    assert all(torch.equal(own[k], v) for k, v in sd.items())
    x, c = torch.rand(1, 3, 16, 16) * 2 - 1, torch.tensor([[0.0, 1, 0, 0, 1]])
    with torch.no_grad():
        torch.testing.assert_close(g(x, c), reference_forward(sd, x, c), atol=2e-5, rtol=0)
    # Only the counters are optional: any other missing buffer is still refused by name.
    del sd["main.1.running_mean"]
    with pytest.raises(CheckpointMismatchError) as err:
        load_generator(sd)
    assert err.value.missing == ["main.1.running_mean"]


def test_dataparallel_prefix_is_stripped(tmp_path):
    sd = {f"module.{k}": v for k, v in official_like_state_dict(conv_dim=8, repeat_num=2).items()}
    torch.save(sd, tmp_path / "g.ckpt")
    assert load_generator(tmp_path / "g.ckpt").repeat_num == 2


def test_missing_and_unexpected_keys_are_named():
    sd = official_like_state_dict(conv_dim=8, repeat_num=2)
    del sd["main.10.main.3.weight"]
    sd["main.99.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_generator(sd)
    assert "main.10.main.3.weight" in str(err.value) and "main.99.weight" in str(err.value)
    assert err.value.missing == ["main.10.main.3.weight"]


def test_wrong_c_dim_and_wrong_architecture_are_refused():
    sd = official_like_state_dict(conv_dim=8, repeat_num=2)
    with pytest.raises(CheckpointMismatchError, match="c_dim=7"):
        load_generator(sd, c_dim=7)
    sd["main.3.weight"] = torch.zeros(5, 8, 4, 4)  # a different width in the first down-sampling
    with pytest.raises(CheckpointMismatchError, match="main.3.weight"):
        load_generator(sd)
    with pytest.raises(CheckpointMismatchError, match="main.0.weight"):
        load_generator({"conv1.weight": torch.zeros(3)})


def test_unreadable_files_raise_model_load_error(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_generator(tmp_path / "junk.ckpt")
    torch.save(official_like_state_dict(conv_dim=8, repeat_num=2), tmp_path / "ok.ckpt")
    data = (tmp_path / "ok.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        load_generator(tmp_path / "cut.ckpt")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_generator(tmp_path / "absent.ckpt")


def test_instance_statistics_leave_running_buffers_untouched(generator):
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    generator.train()  # even in train mode, as the official test code runs it
    try:
        generator(torch.rand(3, 3, 32, 32) * 2 - 1, torch.zeros(3, 5))
    finally:
        generator.eval()
    for k, v in generator.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_batch_composition_does_not_change_an_image(generator):
    torch.manual_seed(1)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    c = torch.eye(5)[:4]
    with torch.no_grad():
        alone = generator(x[2:3], c[2:3])
        batch = generator(x, c)
        other = generator(torch.cat([x[2:3], -x[:1] * 3]), torch.cat([c[2:3], c[:1]]))
    # Equal up to float32 summation order (batched convolution kernels may sum differently).
    torch.testing.assert_close(batch[2:3], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(other[:1], alone, atol=1e-5, rtol=0)
