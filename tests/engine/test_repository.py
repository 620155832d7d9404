"""Model sets: manifest, hashes, load by path or name, import of official-layout checkpoints,
and bad input (truncated, foreign or other-architecture checkpoints, newer manifests, unwritable
or full destinations) refused with nothing half-written left behind."""

from __future__ import annotations

import errno
import functools
import json
import os
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from faceshield.cli.main import main as cli
from faceshield.engine import modelsets as repo
from faceshield.engine.errors import ModelLoadError
from tests.helpers import ATTRS, tiny_generator, write_tiny_model_set

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
    return write_tiny_model_set(
        dest,
        RES,
        name=name,
        version="3",
        generator=tiny_generator_bytes(),
        saliency=tiny_saliency_onnx(),
        saliency_parameters={"variant": "TE-0", "input_size": 32},
        metrics={"saliency_mae": 0.01},
        **overrides,
    )


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
