"""The real victim: vintagify's CycleGAN, read from its installed wheel without importing it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from faceshield.engine.models.translator import TranslatorSpec, load_translator
from faceshield.engine.models.victims import Unconditional
from faceshield.engine.modelsets import export_translator, load_model_set, read_manifest, vintage
from faceshield.engine.modelsets.defaults import build_default_models
from tests.engine.test_translator import reference_resnet

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("vintagify") is None, reason="vintagify is not installed"
)


@pytest.fixture(scope="module")
def state():
    return torch.load(vintage.weights_path(), map_location="cpu", weights_only=True)


def test_the_checkpoint_loads_strictly_without_importing_vintagify():
    code = (
        "import sys\n"
        "from faceshield.engine.modelsets.vintage import weights_path\n"
        "from faceshield.engine.models.stargan import load_state_dict_file\n"
        "from faceshield.engine.models.translator import load_translator\n"
        "m = load_translator(load_state_dict_file(weights_path()))\n"
        "print(m.spec, 'vintagify' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False False"), out.stdout  # neither the package nor pyplot imported
    assert "ngf=64, blocks=9, norm='instance-affine', bias=True, block_name='block'" in out.stdout


def test_the_translator_computes_what_the_layout_says(state):
    model = load_translator(state)
    assert model.spec == TranslatorSpec("resnet", 64, 9, "instance-affine", True, "block", False)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_resnet(state, x, "block", 9), atol=1e-5, rtol=0)


def test_the_torchscript_artifact_matches_eager_outputs_and_input_gradients(state):
    model = load_translator(state)
    _, worst = export_translator(model, 64)  # raises above the 1e-4 tolerance
    assert worst <= 1e-4


def test_hash_checked_and_missing_or_changed_is_a_warning_not_a_failure(monkeypatch, caplog):
    monkeypatch.setattr(vintage, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(vintage.VintageUnavailable, match="the file changed"):
        vintage.weights_path()
    monkeypatch.setattr(vintage, "DISTRIBUTION", "vintagify-not-installed")
    with pytest.raises(vintage.VintageUnavailable, match="is not installed"):
        vintage.weights_path()
    with caplog.at_level(logging.WARNING):
        models = build_default_models(with_saliency=False)
    assert [v.name for v in models.victims] == ["stargan"]  # carries on with the StarGAN victim
    assert "vintage victim unavailable" in caplog.text


@pytest.mark.slow
def test_prepare_is_atomic_and_two_processes_at_once_leave_one_whole_set(tmp_path):
    env = {**__import__("os").environ, "XDG_DATA_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    code = "from faceshield.engine.modelsets.vintage import prepare; print(prepare(64))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    sets = tmp_path / "faceshield" / "models"
    assert sorted(p.name for p in sets.iterdir()) == ["vintagify-64"]  # no temporary left behind
    m = read_manifest(sets / "vintagify-64")
    assert m.victims[0].source["sha256"] == vintage.WEIGHTS_SHA256 and m.resolution == 64
    models = load_model_set(sets / "vintagify-64")  # every file matches its hash
    v = models.victims[0]
    assert isinstance(v.generator, Unconditional) and v.targets == ["vintage"]
    assert json.loads((sets / "vintagify-64" / "manifest.json").read_text())["produced_by"]["credit"].startswith(
        "vintagify 0.1.2"
    )


@pytest.mark.slow
def test_the_victim_is_named_by_its_weights_whether_prepared_or_built_in_memory(tmp_path, monkeypatch):
    """An evaluation resumes only against the same victim; a prepared set (TorchScript bytes that
    differ from build to build) and the in-memory build of the same checkpoint are the same one."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    in_memory = vintage.vintage_victim(64)
    vintage.prepare(64)
    prepared = vintage.vintage_victim(64)
    assert in_memory is not None and prepared is not None
    assert in_memory.sha256 == prepared.sha256 == vintage.WEIGHTS_SHA256
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert torch.allclose(in_memory.generator(x, None), prepared.generator(x, None), atol=1e-6)
