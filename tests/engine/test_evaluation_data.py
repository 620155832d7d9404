"""Evaluation data and statistics: CelebA in StarGAN's order and crop, synthetic faces, the
intervals, the robustness transforms, the per-sample grid."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from faceshield.engine import AttackConfig
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.evaluation import (
    TRANSFORMS,
    mean_ci,
    open_dataset,
    stargan_order,
    wilson,
)
from faceshield.engine.evaluation.figures import sample_grid
from faceshield.engine.evaluation.stats import t_quantile_975
from tests.helpers import ATTRS

RES = 32
FAST = AttackConfig(steps=2, noise_steps=1)


def _celeba(root, names, sizes=None):
    (root / "img_align_celeba").mkdir(parents=True)
    header = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    lines = [str(len(names)), " ".join(header)]
    rng = np.random.default_rng(1)
    for k, name in enumerate(names):
        w, h = (sizes or {}).get(name, (36, 44))
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        vals = ["1" if (k >> b) & 1 else "-1" for b in range(len(header))]
        lines.append(f"{name}  " + " ".join(vals))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


def test_celeba_uses_stargans_order_attributes_and_crop(tmp_path):
    names = [f"{k:06d}.png" for k in range(1, 13)]
    _celeba(tmp_path, names, {"000003.png": (178, 218)})
    ds = open_dataset(tmp_path, 128, ATTRS)
    expected = list(names)
    random.seed(1234)  # exactly what the official loader does
    random.shuffle(expected)
    assert ds.ids == expected == stargan_order(names)
    k = names.index("000005.png")  # bits of 4 = 0b100: only column 2 (Blond_Hair) is 1
    assert k == 4
    assert ds.load("000005.png").attributes == (0.0, 1.0, 0.0, 0.0, 0.0)
    s = ds.load("000003.png")
    raw = Image.open(tmp_path / "img_align_celeba" / "000003.png")
    want = np.asarray(raw.crop((0, 20, 178, 198)).resize((128, 128), Image.BILINEAR))
    assert s.image.shape == (128, 128, 3) and np.array_equal(s.image, want)
    assert ds.describe()["kind"] == "celeba"


def test_synthetic_faces_carry_their_attributes():
    ds = open_dataset("synthetic:5", RES, ATTRS)
    s = ds.load(ds.ids[2])
    assert ds.kind == "synthetic" and s.image.shape == (RES, RES, 3) and s.image.dtype == np.uint8
    assert len(s.attributes) == len(ATTRS) and set(s.attributes) <= {0.0, 1.0}
    assert np.array_equal(ds.load(ds.ids[2]).image, s.image)  # rendered from the seed alone
    with pytest.raises(InvalidInputError, match="synthetic faces carry"):
        open_dataset("synthetic", RES, ["Male"])
    with pytest.raises(InvalidInputError, match="synthetic:SEED"):
        open_dataset("synthetic:x", RES, ATTRS)


# -- statistics and transforms ---------------------------------------------------------------


def test_statistics_match_reference_values():
    est = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert est.mean == 2.5 and est.n == 4
    assert est.high - est.mean == pytest.approx(3.1824 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-4)
    assert mean_ci([5.0]).low is None and mean_ci([]).mean is None
    assert mean_ci([1.0, float("inf"), 3.0]).n == 2
    w = wilson(8, 10)  # textbook value: 0.490 to 0.943
    assert (round(w.low, 3), round(w.high, 3)) == (0.490, 0.943)
    assert wilson(10, 10).high == 1.0 and wilson(0, 10).low == 0.0
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 5, 30, 31, 50, 200, 5000):
        assert t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-4)


def test_transforms_keep_size_and_change_pixels():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)
    for name, t in TRANSFORMS.items():
        out = t(img)
        assert out.shape == img.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, img), name


def test_sample_grid_marks_missing_masks():
    rgb = np.zeros((RES, RES, 3), np.uint8)
    rows = [
        {
            "target": "Male",
            "original": rgb,
            "masks": {},
            "g_original": rgb,
            "protected": rgb,
            "g_protected": rgb,
            "mse": 0.1,
            "psnr": 30.0,
        }
    ]
    grid = sample_grid(rows, title="t", tile=RES)
    # The saliency column is drawn as a light "not used" tile.
    assert np.asarray(grid).mean() > 100


# -- the command line ------------------------------------------------------------------------
