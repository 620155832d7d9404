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
        torch.onnx.export(net, (torch.rand(2, 3, 16, 16),), buf, input_names=["image"], output_names=["saliency"],
                          opset_version=17, dynamo=False)
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
    m = {"edit_accuracy": {"overall": edit}, "saliency_mae": mae,
         "protection": {"union-saliency": {"success_rate": union, "psnr": psnr[0]}, "pgd": {"psnr": psnr[1]},
                        "uniform-noise": {"success_rate": noise}}}
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
