"""Pieces of scripts/build_demo_models.py that decide what ships: ONNX weight storage, candidate
settings and the choice between candidates; and the training scripts' bare-machine imports."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import build_demo_models as build  # noqa: E402


def small_conv_onnx() -> tuple[bytes, nn.Module]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 1, 3, padding=1), nn.Sigmoid()).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's own deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            net,
            (torch.rand(2, 3, 16, 16),),
            buf,
            input_names=["image"],
            output_names=["saliency"],
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue(), net


@pytest.mark.parametrize("mode, tol, saved", [("float16", 1e-3, 0.4), ("int8", 2e-2, 0.65)])
def test_weight_storage_keeps_outputs_and_shrinks_the_file(mode, tol, saved):
    data, net = small_conv_onnx()
    small = build.compress_onnx_weights(data, mode)
    onnx.checker.check_model(onnx.load_from_string(small))
    conv_bytes = sum(p.numel() * 4 for n, p in net.named_parameters() if p.ndim == 4)
    assert len(data) - len(small) > saved * conv_bytes
    x = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)
    ref = net(torch.from_numpy(x)).detach().numpy()
    (y,) = ort.InferenceSession(small, providers=["CPUExecutionProvider"]).run(None, {"image": x})
    assert np.abs(y - ref).max() < tol
    meta = {p.key: p.value for p in onnx.load_from_string(small).metadata_props}
    assert meta["faceshield.weight_storage"] == mode
    assert build.compress_onnx_weights(data, "float32") == data
    with pytest.raises(ValueError, match="unknown weight storage"):
        build.compress_onnx_weights(data, "int4")


def test_candidates_parse_onto_the_base_settings():
    base = build.stargan_training.StarGANSettings(batch=7)
    name, s = build.parse_candidate("g32:conv_dim=32,pair_decay_to=0.2", base)
    assert (name, s.conv_dim, s.pair_decay_to, s.batch) == ("g32", 32, 0.2, 7)
    with pytest.raises(SystemExit, match="unknown StarGAN setting"):
        build.parse_candidate("g:width=3", base)
    with pytest.raises(SystemExit, match="start with a name"):
        build.parse_candidate("conv_dim=3", base)


def figures(edit, union, noise=0.0, mae=0.02, psnr=(38.0, 33.0)):
    m = {
        "edit_accuracy": {"overall": edit},
        "saliency_mae": mae,
        "protection": {
            "union-saliency": {"success_rate": union, "psnr": psnr[0]},
            "pgd": {"psnr": psnr[1]},
            "uniform-noise": {"success_rate": noise},
        },
    }
    m["meets_targets"] = build._meets(m)
    return m


def test_the_smallest_candidate_meeting_every_target_ships():
    results = {"small": (figures(0.95, 0.96), 2), "big": (figures(0.99, 1.0), 8), "bad": (figures(0.5, 1.0), 1)}
    assert max(results, key=lambda n: build._score(*results[n])) == "small"
    results = {"small": (figures(0.95, 0.50), 2), "big": (figures(0.93, 0.80), 8)}
    assert max(results, key=lambda n: build._score(*results[n])) == "big"
    results = {"edits": (figures(0.95, 0.10), 2), "no-edits": (figures(0.40, 1.0), 8)}
    assert max(results, key=lambda n: build._score(*results[n])) == "edits"


def test_training_imports_survive_without_onnx_and_pillow():
    """A GPU box with only torch and numpy can still train: placeholders stand in, and using
    one names the missing package."""
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('onnx', 'onnxruntime', 'PIL'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib.util\n"
        "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] in ('onnx', 'onnxruntime', 'PIL') else __import__('importlib.machinery').machinery.PathFinder.find_spec(name)\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "import _training_env\n"
        "_training_env.prepare()\n"
        "import train_demo_tracer, train_demo_stargan\n"
        "from faceshield.engine.models.tracer import TRACER\n"
        "TRACER('TE-0', 64)\n"
        "import onnx\n"
        "try:\n"
        "    onnx.load_from_string(b'')\n"
        "except ModuleNotFoundError as e:\n"
        "    print('refused:', e)\n"
        "print(sorted(_training_env.missing()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused: onnx is not installed here" in out.stdout
    assert "['PIL', 'onnx', 'onnxruntime']" in out.stdout


# -- warm starts: a build continued from an earlier one's checkpoints ------------------------
@pytest.fixture(scope="module")
def tiny_pool():
    from faceshield.engine.synthetic import render_pool

    return render_pool(0, "train", 2, 32, workers=1)


def seeded_generator(conv_dim: int):
    from faceshield.engine.models.stargan import Generator

    torch.manual_seed(3)
    return Generator(conv_dim, 5, 2)


@pytest.mark.parametrize("form", ["state-dict", "torchscript", "model-set-dir"])
def test_stargan_training_starts_from_the_given_weights(tmp_path, tiny_pool, form):
    from faceshield.engine import modelsets as repo

    g0 = seeded_generator(8)
    if form == "state-dict":
        source = tmp_path / "g.pt"
        torch.save(g0.state_dict(), source)
    else:
        data, _ = repo.export_generator(g0.eval(), 32, ["a", "b", "c", "d", "e"])
        (tmp_path / repo.GENERATOR_FILE).write_bytes(data)
        source = tmp_path if form == "model-set-dir" else tmp_path / repo.GENERATOR_FILE
    init = build.stargan_training.initial_weights(source)
    settings = build.stargan_training.StarGANSettings(
        resolution=32, conv_dim=8, repeat_num=2, d_conv_dim=8, d_repeat_num=3, batch=2, iterations=0
    )
    g, record = build.stargan_training.train_stargan(settings, "cpu", 0, 60, pool=tiny_pool, init=init)
    assert record["warm_start"] and record["iterations"] == 0
    for k, v in g0.state_dict().items():
        assert torch.equal(g.state_dict()[k], v), k
    moved, _ = build.stargan_training.train_stargan(
        build.stargan_training.StarGANSettings(**{**settings.__dict__, "iterations": 1}),
        "cpu",
        0,
        60,
        pool=tiny_pool,
        init=init,
    )
    assert not torch.equal(moved.state_dict()["main.0.weight"], g0.state_dict()["main.0.weight"])


def test_stargan_warm_start_of_another_width_names_the_keys(tiny_pool):
    from faceshield.engine.errors import CheckpointMismatchError

    settings = build.stargan_training.StarGANSettings(
        resolution=32, conv_dim=8, repeat_num=2, d_conv_dim=8, d_repeat_num=3, batch=2, iterations=0
    )
    with pytest.raises(CheckpointMismatchError, match=r"main\.0\.weight"):
        build.stargan_training.train_stargan(
            settings, "cpu", 0, 60, pool=tiny_pool, init=seeded_generator(16).state_dict()
        )


def test_tracer_training_starts_from_the_given_weights(tiny_pool):
    from faceshield.engine.models.tracer import TRACER, half_state_dict

    torch.manual_seed(5)
    init = half_state_dict(TRACER("TE-0", 64))  # as checkpoints store it
    settings = build.tracer_training.TracerSettings(input_size=64, resolution=32, batch=2, iterations=0, bn_batches=1)
    t, record = build.tracer_training.train_tracer(settings, "cpu", 1, 60, pool=tiny_pool, init=init)
    assert record["warm_start"]
    for name, p in t.named_parameters():  # no step taken: the (float16-rounded) weights themselves
        assert torch.equal(p, init[name].float()), name


def test_refining_tracer_needs_a_finished_build(tmp_path):
    with pytest.raises(SystemExit, match="--from-checkpoints"):
        build.main(["--refine-tracer", "5", "--out", str(tmp_path / "demo"), "--work", str(tmp_path)])


def test_manifest_training_summary_lists_refinements():
    stage = {
        "iterations": 152,
        "train_seconds": 71.0,
        "device": "cuda",
        "torch": "2.11",
        "seed": 1,
        "refinements": [
            {
                "iterations": 900,
                "train_seconds": 900.0,
                "device": "cpu",
                "torch": "2.14",
                "seed": 1,
                "settings": {"lr": 5e-4, "batch": 32},
            }
        ],
    }
    summary = build._training_summary(stage)
    assert summary["iterations"] == 152 and summary["device"] == "cuda"
    assert summary["refinements"] == [
        {
            "iterations": 900,
            "train_seconds": 900.0,
            "device": "cpu",
            "torch": "2.14",
            "seed": 1,
            "lr": 5e-4,
            "batch": 32,
        }
    ]
    assert "refinements" not in build._training_summary({"iterations": 3})
