"""Model sets: manifest, hashes, load by path or name, import of official-layout checkpoints,
and bad input (truncated, foreign or other-architecture checkpoints, newer manifests, unwritable
or full destinations) refused with nothing half-written left behind."""

from __future__ import annotations

import errno
import functools
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from faceshield.cli.main import main as cli
from faceshield.engine import modelsets as repo
from faceshield.engine.errors import CheckpointMismatchError, ModelLoadError
from faceshield.engine.models.tracer import build_tracer
from tests.helpers import ATTRS, tiny_generator

RES = 32


def tiny_saliency_onnx(size: int = 32) -> bytes:
    """A stand-in saliency graph with the runner's contract: (N, 3, S, S) -> (N, 1, S, S)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("saliency", TensorProto.FLOAT, ["batch", 1, size, size])
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Sigmoid", ["m"], ["saliency"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@functools.cache
def tiny_generator_bytes() -> bytes:
    return repo.export_generator(tiny_generator(), RES, ATTRS)[0]


def write_tiny_set(dest: Path, name: str = "tiny", **overrides) -> Path:
    gen_bytes = tiny_generator_bytes()
    sal = tiny_saliency_onnx()
    manifest = repo.build_manifest(
        name=name,
        version="3",
        resolution=RES,
        attributes=ATTRS,
        generator_bytes=gen_bytes,
        generator_parameters={"conv_dim": 8, "c_dim": 5, "repeat_num": 2},
        generator_source={"test": True},
        saliency_bytes=sal,
        saliency_parameters={"variant": "TE-0", "input_size": 32},
        produced_by={"tool": "test"},
        metrics={"saliency_mae": 0.01},
        **overrides,
    )
    return repo.write_model_set(dest, manifest, {repo.GENERATOR_FILE: gen_bytes, repo.SALIENCY_FILE: sal})


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv(repo.ENV_PATH, str(root))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return root


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


# -- manifest and loading ------------------------------------------------------------------
def test_round_trip_by_path_and_by_name(models_dir):
    path = write_tiny_set(models_dir / "tiny")
    manifest = json.loads((path / repo.MANIFEST_FILE).read_text())
    assert manifest["format"] == repo.FORMAT and manifest["format_version"] == repo.FORMAT_VERSION
    assert manifest["victims"][0]["sha256"] == repo.sha256_file(path / repo.GENERATOR_FILE)
    assert manifest["produced_by"]["tool"] == "test" and "created" in manifest["produced_by"]
    for ref in (str(path), "tiny"):
        m = repo.load_model_set(ref)
        assert (m.name, m.version, m.resolution, m.attributes) == ("tiny", "3", RES, ATTRS)
        assert m.hashes[repo.GENERATOR_FILE] == manifest["victims"][0]["sha256"]
        assert m.saliency is not None and m.trained
    m = repo.load_model_set("tiny", with_saliency=False)
    assert m.saliency is None
    x, c = torch.rand(2, 3, RES, RES) * 2 - 1, torch.eye(5)[:2]
    torch.testing.assert_close(m.generator(x, c), tiny_generator()(x, c), atol=1e-5, rtol=1e-4)
    assert leftovers(models_dir) == []


def test_changed_or_missing_file_refuses_to_load(models_dir):
    path = write_tiny_set(models_dir / "tiny")
    data = bytearray((path / repo.SALIENCY_FILE).read_bytes())
    data[-1] ^= 1
    (path / repo.SALIENCY_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"saliency\.onnx does not match its manifest"):
        repo.load_model_set("tiny")
    with pytest.raises(ModelLoadError, match="does not match"):
        repo.verify_model_set("tiny")
    (path / repo.GENERATOR_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"generator\.pt is missing"):
        repo.load_model_set(path)


def test_newer_or_foreign_manifest_is_refused(tmp_path):
    path = write_tiny_set(tmp_path / "tiny")
    manifest = json.loads((path / repo.MANIFEST_FILE).read_text())
    manifest["format_version"] = repo.FORMAT_VERSION + 1
    (path / repo.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="newer FaceShield"):
        repo.load_model_set(path)
    (path / repo.MANIFEST_FILE).write_text('{"name": "x"}')
    with pytest.raises(ModelLoadError, match="not a FaceShield model-set manifest"):
        repo.load_model_set(path)
    (path / repo.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        repo.load_model_set(path)
    manifest["format_version"] = repo.FORMAT_VERSION
    manifest["victims"][0]["file"] = "../escape.pt"
    (path / repo.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="plain name"):
        repo.load_model_set(path)
    with pytest.raises(ModelLoadError, match="no model set"):
        repo.load_model_set(tmp_path / "nowhere")


def test_attribute_count_must_fit_the_generator(tmp_path):
    path = write_tiny_set(tmp_path / "tiny")
    manifest = json.loads((path / repo.MANIFEST_FILE).read_text())
    manifest["victims"][0]["attributes"] = ATTRS[:4]
    manifest["victims"][0]["parameters"].pop("c_dim")
    (path / repo.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="takes 5 labels but the manifest names 4"):
        repo.load_model_set(path)


# -- writing ----------------------------------------------------------------------------------
def test_existing_destination_needs_force(tmp_path):
    write_tiny_set(tmp_path / "tiny")
    with pytest.raises(repo.ModelSetWriteError, match="already exists"):
        write_tiny_set(tmp_path / "tiny")
    gen_bytes = tiny_generator_bytes()
    m = repo.build_manifest(
        name="tiny",
        version="4",
        resolution=RES,
        attributes=ATTRS,
        generator_bytes=gen_bytes,
        generator_parameters={},
        generator_source={},
        saliency_bytes=None,
        produced_by={},
    )
    repo.write_model_set(tmp_path / "tiny", m, {repo.GENERATOR_FILE: gen_bytes}, overwrite=True)
    assert repo.read_manifest(tmp_path / "tiny").version == "4"
    assert not (tmp_path / "tiny" / repo.SALIENCY_FILE).exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only")])
def test_full_or_read_only_destination_leaves_nothing(tmp_path, monkeypatch, code, words):
    calls = []
    from faceshield.engine.modelsets import store

    real = store._fsync_write

    def failing(path, data):
        calls.append(path)
        if len(calls) == 2:  # the first file is written, the second fails
            raise OSError(code, os.strerror(code))
        real(path, data)

    monkeypatch.setattr(store, "_fsync_write", failing)
    with pytest.raises(repo.ModelSetWriteError, match=words):
        write_tiny_set(tmp_path / "tiny")
    assert not (tmp_path / "tiny").exists() and leftovers(tmp_path) == []


def test_destination_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(repo.ModelSetWriteError, match="cannot write model set"):
        write_tiny_set(blocker / "sets" / "tiny")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(repo.ModelSetWriteError, match="permission denied"):
            write_tiny_set(ro / "tiny")
    finally:
        ro.chmod(0o755)


# -- importing official-layout checkpoints ----------------------------------------------------
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

    path = repo.import_official(
        generator_checkpoint=checkpoints / "200000-G.ckpt",
        attributes=ATTRS,
        resolution=RES,
        tracer_checkpoint=checkpoints / "TRACER-Efficient-0.pth",
        tracer_input_size=64,
        name="both",
        dest=tmp_path / "both",
    )
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

    lean = repo.import_official(
        generator_checkpoint=checkpoints / "200000-G.ckpt",
        attributes=ATTRS,
        resolution=RES,
        tracer_checkpoint=checkpoints / "TRACER-Efficient-0.pth",
        tracer_input_size=64,
        name="lean",
        dest=tmp_path / "lean",
        torch_saliency=False,
    )
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


def test_tracer_variant_from_official_file_names():
    assert repo.tracer_variant_from_name("TRACER-Efficient-5.pth") == "TE-5"
    assert repo.tracer_variant_from_name("/x/y/tracer-efficient-0.pth") == "TE-0"
    assert repo.tracer_variant_from_name("best_model.pth") is None


def test_list_shows_unreadable_sets_without_failing(models_dir, capsys):
    write_tiny_set(models_dir / "tiny")
    broken = models_dir / "broken"
    broken.mkdir()
    (broken / repo.MANIFEST_FILE).write_text("{")
    assert cli(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "UNREADABLE" in out and "tiny" in out and "saliency MAE: 0.0100" in out


def test_onnx_stand_in_is_a_valid_graph():
    onnx.checker.check_model(onnx.load_from_string(tiny_saliency_onnx()))
