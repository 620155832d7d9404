"""Importing checkpoints into a model set: official StarGAN and TRACER files (the 2018 release
without batch counters included), both TRACER runtimes, and bad checkpoints refused with nothing
half-written left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from faceshield.cli.main import main as cli
from faceshield.engine import modelsets as repo
from faceshield.engine.errors import CheckpointMismatchError, ModelLoadError
from faceshield.engine.models.tracer import build_tracer
from tests.engine.test_repository import RES, leftovers
from tests.helpers import ATTRS, tiny_generator


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    g = tiny_generator(conv_dim=8, repeat_num=2)
    torch.save(g.state_dict(), d / "200000-G.ckpt")  # the official format: a bare state dict
    tracer = build_tracer("TE-0", seed=1, input_size=64)
    # Official TRACER files are DataParallel state dicts: every key prefixed "module.".
    torch.save({f"module.{k}": v for k, v in tracer.state_dict().items()}, d / "TRACER-Efficient-0.pth")
    return d


@pytest.mark.slow
def test_import_official_checkpoints_then_use_by_name(checkpoints, models_dir, capsys):
    rc = cli(
        [
            "models",
            "import",
            "--generator",
            str(checkpoints / "200000-G.ckpt"),
            "--resolution",
            str(RES),
            "--tracer",
            str(checkpoints / "TRACER-Efficient-0.pth"),
            "--tracer-size",
            "64",
            "--name",
            "celeba",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "TorchScript matches eager" in out and "ONNX matches PyTorch" in out and "--models celeba" in out
    m = repo.verify_model_set("celeba")
    assert m.generator.parameters == {"conv_dim": 8, "c_dim": 5, "repeat_num": 2}
    assert m.saliency.parameters == {"variant": "TE-0", "input_size": 64}
    assert m.produced_by["tool"] == "faceshield models import"
    assert m.produced_by["sources"][0] == {
        "file": "200000-G.ckpt",
        "sha256": repo.sha256_file(checkpoints / "200000-G.ckpt"),
    }
    assert m.produced_by["checks"]["torchscript_max_diff"] <= repo.TORCHSCRIPT_TOLERANCE
    assert m.produced_by["checks"]["onnx_max_diff"] <= repo.ONNX_TOLERANCE
    models = repo.load_model_set("celeba")
    s = models.saliency(torch.rand(1, 3, RES, RES))
    assert s.shape == (1, 1, RES, RES)
    assert cli(["models", "verify", "celeba"]) == 0
    assert cli(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "celeba" in listing and "TRACER TE-0" in listing
    assert cli(["models", "list", "--json"]) == 0
    names = [s.get("name") for s in json.loads(capsys.readouterr().out)]
    assert "celeba" in names
    assert leftovers(models_dir) == []


def without_counters(state: dict) -> dict:
    """A state dict as PyTorch 0.4.0 wrote it (the official 2018 StarGAN release)."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_import_legacy_checkpoints_without_batch_counters(checkpoints, tmp_path, capsys):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("200000-G.ckpt", "TRACER-Efficient-0.pth"):
        state = torch.load(checkpoints / name, weights_only=True)
        assert any(k.endswith("num_batches_tracked") for k in state)
        torch.save(without_counters(state), legacy / name, _use_new_zipfile_serialization=False)
    dest = tmp_path / "sets" / "legacy"
    args = ["models", "import", "--generator", str(legacy / "200000-G.ckpt"), "--resolution", str(RES)]
    args += ["--tracer", str(legacy / "TRACER-Efficient-0.pth"), "--tracer-size", "64", "--output", str(dest)]
    assert cli(args) == 0, capsys.readouterr().err
    models = repo.load_model_set(dest)
    eager = tiny_generator(conv_dim=8, repeat_num=2)
    x, c = torch.rand(1, 3, RES, RES) * 2 - 1, torch.eye(5)[:1]
    with torch.no_grad():
        torch.testing.assert_close(models.generator(x, c), eager(x, c), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_imported_tracer_runs_on_either_runtime_with_the_same_maps(checkpoints, tmp_path, monkeypatch, capsys):
    """The set keeps TRACER as ONNX and (float16) PyTorch weights; "torch" runs the latter,
    "auto" keeps ONNX Runtime off CUDA and moves to PyTorch on a CUDA device whose ONNX Runtime
    has no CUDA provider (simulated here: the device is never touched before the first call)."""
    from faceshield.engine.saliency import TorchSaliency, TracerSaliency

    def import_both(name: str, **options):
        """The official pair, TRACER at 64 px, imported as set NAME."""
        return repo.import_official(
            generator_checkpoint=checkpoints / "200000-G.ckpt",
            attributes=ATTRS,
            resolution=RES,
            tracer_checkpoint=checkpoints / "TRACER-Efficient-0.pth",
            tracer_input_size=64,
            name=name,
            dest=tmp_path / name,
            **options,
        )

    path = import_both("both")
    m = repo.verify_model_set(path)
    assert m.saliency_torch.file == repo.SALIENCY_TORCH_FILE and m.saliency_torch.format == "pytorch-state-dict"
    monkeypatch.setenv(repo.ENV_PATH, str(tmp_path))
    assert cli(["models", "list"]) == 0
    assert "TRACER TE-0 (ONNX + PyTorch weights)" in capsys.readouterr().out
    assert m.saliency_torch.parameters == m.saliency.parameters
    onnx_set = repo.load_model_set(path)
    torch_set = repo.load_model_set(path, saliency_runtime="torch")
    assert isinstance(onnx_set.saliency, TracerSaliency) and onnx_set.saliency.runtime == "onnxruntime"
    assert isinstance(torch_set.saliency, TorchSaliency) and torch_set.providers == ["torch:cpu"]
    x = torch.rand(2, 3, RES, RES, generator=torch.Generator().manual_seed(3))
    assert (onnx_set.saliency(x) - torch_set.saliency(x)).abs().max().item() < 2e-2  # float16 weights

    class OnDevice:  # stands for TorchSaliency on a GPU this machine does not have
        runtime = "torch"

        def __init__(self, model, *, name=None, device=None):
            self.model, self.name, self.providers = model, name, [f"torch:{device}"]

    import faceshield.engine.saliency as saliency_module

    monkeypatch.setattr(saliency_module, "TorchSaliency", OnDevice)
    cuda = repo.load_model_set(path, device="cuda", providers=["CPUExecutionProvider"])
    assert isinstance(cuda.saliency, OnDevice) and cuda.providers == ["torch:cuda"]
    assert cuda.saliency.model.variant.name == "TE-0" and cuda.saliency.model.input_size == 64
    # onnxruntime's own choice: here it lists CUDA but cannot start it, or does not list it at all.
    assert isinstance(repo.load_model_set(path, device="cuda").saliency, OnDevice)
    assert isinstance(repo.load_model_set(path, device="cuda", saliency_runtime="onnxruntime").saliency, TracerSaliency)
    monkeypatch.undo()
    with pytest.raises(Exception, match="unknown runtime"):
        repo.load_model_set(path, saliency_runtime="tensorrt")

    lean = import_both("lean", torch_saliency=False)
    assert repo.read_manifest(lean).saliency_torch is None and not (lean / repo.SALIENCY_TORCH_FILE).exists()
    assert isinstance(
        repo.load_model_set(lean, device="cuda", providers=["CPUExecutionProvider"]).saliency, TracerSaliency
    )  # no weights: CPU
    with pytest.raises(ModelLoadError, match="no PyTorch TRACER weights"):
        repo.load_model_set(lean, saliency_runtime="torch")

    (path / repo.SALIENCY_TORCH_FILE).write_bytes(b"corrupt")
    repo.load_model_set(path)  # ONNX Runtime does not need the file
    with pytest.raises(ModelLoadError, match="does not match its manifest"):
        repo.load_model_set(path, saliency_runtime="torch")


def test_import_refuses_bad_checkpoints_and_writes_nothing(checkpoints, tmp_path, capsys):
    dest = tmp_path / "sets" / "x"
    good_g, good_t = checkpoints / "200000-G.ckpt", checkpoints / "TRACER-Efficient-0.pth"

    def attempt(generator, tracer=None, **kw):
        return repo.import_official(
            generator_checkpoint=generator,
            attributes=ATTRS,
            resolution=RES,
            tracer_checkpoint=tracer,
            tracer_input_size=64,
            name="x",
            dest=dest,
            **kw,
        )

    truncated = tmp_path / "truncated-G.ckpt"
    truncated.write_bytes(good_g.read_bytes()[: good_g.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        attempt(truncated)
    foreign = tmp_path / "foreign.ckpt"
    foreign.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        attempt(foreign)
    # A TRACER file where the generator belongs, and the generator where TRACER belongs.
    with pytest.raises(CheckpointMismatchError, match="main.0.weight"):
        attempt(good_t)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: model\._conv_stem"):
        attempt(good_g, tracer=good_g, tracer_variant="TE-0")
    # The generator with the wrong number of attributes.
    with pytest.raises(CheckpointMismatchError, match="c_dim=4"):
        repo.import_official(generator_checkpoint=good_g, attributes=ATTRS[:4], resolution=RES, name="x", dest=dest)
    # A StarGAN discriminator checkpoint (another architecture with a main.0.weight).
    d_state = {
        "main.0.weight": torch.zeros(8, 3, 4, 4),
        "main.0.bias": torch.zeros(8),
        "conv1.weight": torch.zeros(1, 8, 3, 3),
    }
    torch.save(d_state, tmp_path / "200000-D.ckpt")
    with pytest.raises(CheckpointMismatchError, match="main.0.weight"):
        attempt(tmp_path / "200000-D.ckpt")
    with pytest.raises(ModelLoadError, match="does not exist"):
        attempt(tmp_path / "absent.ckpt")
    assert not dest.exists() and leftovers(dest.parent) == []
    rc = cli(["models", "import", "--generator", str(truncated), "--output", str(dest)])
    assert rc == 2 and "not a readable PyTorch checkpoint" in capsys.readouterr().err
