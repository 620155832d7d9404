"""dlib's face-recognition ResNet as our own module: the reader parses dlib's file and refuses a
damaged one by name; the module computes dlib's descriptors (against dlib itself on real face
chips); descriptors tell the two photos' people apart; gradients reach the photo through the
chip. Tests needing dlib or the model files skip where they are not installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceshield.engine.errors import InvalidInputError, ModelLoadError
from faceshield.engine.faces.landmarks import FaceModelsMissing, find_landmarks, models_file
from faceshield.engine.models.dlib_format import DlibFormatError, DlibLayer, DlibNetwork, read_dlib_network
from faceshield.engine.models.recogniser import (
    KEPT,
    RECOGNISER_FILE,
    SAME_PERSON,
    FaceRecogniser,
    add_prev,
    descriptor_distance,
    load_recogniser,
)
from faceshield.engine.ops.chip import aligned_chip, chip_geometry
from tests.photos import photo

PHOTOS = ("astronaut", "grace_hopper")


@pytest.fixture(scope="module")
def dat_file():
    try:
        return models_file(RECOGNISER_FILE)
    except FaceModelsMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def model(dat_file) -> FaceRecogniser:
    return load_recogniser(dat_file)


@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib", reason="dlib (dlib-bin) is not installed")


@pytest.fixture(scope="module")
def faces(dlib, dat_file):
    """name -> (photo, its 5 landmarks, dlib's shape, dlib's chip, dlib's descriptor)."""
    recogniser = dlib.face_recognition_model_v1(str(dat_file))
    out = {}
    for name in PHOTOS:
        image = photo(name)
        found = find_landmarks(image)
        assert found.ok, found.reason
        parts = dlib.points()
        for x, y in found.points:
            parts.append(dlib.point(int(x), int(y)))
        shape = dlib.full_object_detection(dlib.rectangle(*found.rect), parts)
        chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        reference = np.asarray(recogniser.compute_face_descriptor(chip))
        whole = np.asarray(recogniser.compute_face_descriptor(image, shape))  # dlib cuts the chip itself
        out[name] = (image, found.points, chip, reference, whole)
    return out


def batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()


# -- the module ------------------------------------------------------------------------------------
def test_add_prev_zero_fills_the_smaller_tensor_at_the_end():
    a = torch.arange(2 * 3 * 3.0).view(1, 2, 3, 3)
    b = torch.ones(1, 4, 4, 4)
    out = add_prev(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert torch.equal(out[:, :2, :3, :3], a + 1)
    assert torch.equal(out[:, 2:], torch.ones(1, 2, 4, 4)) and torch.equal(out[:, :, 3], torch.ones(1, 4, 4))


def test_a_small_seeded_recogniser_is_repeatable_and_per_image():
    kwargs = dict(stages=((8, 1), (16, 2)), stem=8, descriptor=16, size=64)
    net, again = FaceRecogniser(**kwargs, seed=3).eval(), FaceRecogniser(**kwargs, seed=3).eval()
    chips = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    out = net(chips)
    assert out.shape == (3, 16) and torch.equal(out, again(chips))
    torch.testing.assert_close(net(chips[1:2]), out[1:2], atol=1e-5, rtol=0)
    assert not torch.equal(FaceRecogniser(**kwargs, seed=4)(chips), out)
    with pytest.raises(InvalidInputError, match="chips"):
        net(torch.zeros(1, 3, 150, 150))


def test_dlib_sized_recogniser_has_dlibs_parameter_count():
    assert sum(p.numel() for p in FaceRecogniser().parameters()) == 5_614_592


def test_descriptor_distance_is_euclidean():
    a, b = np.zeros((2, 128)), np.zeros(128)
    a[1, :4] = 1
    np.testing.assert_allclose(descriptor_distance(a, b), [0.0, 2.0])
    assert torch.allclose(
        descriptor_distance(torch.tensor(a), torch.tensor(b)), torch.tensor([0.0, 2.0], dtype=torch.float64)
    )
    assert KEPT < SAME_PERSON == 0.6


# -- the reader --------------------------------------------------------------------------------------
def test_reader_parses_dlibs_file(dat_file):
    net = read_dlib_network(dat_file)
    assert net.loss["tag"] == "loss_metric_2"
    assert net.loss["margin"] == pytest.approx(0.04) and net.loss["distance_threshold"] == pytest.approx(0.6)
    assert net.input["size"] == (150, 150) and net.input["mean"] == pytest.approx((122.782, 117.001, 104.298))
    kinds = [layer.kind for layer in net.layers]
    assert kinds[:4] == ["con", "affine", "relu", "max_pool"] and kinds[-2:] == ["avg_pool", "fc"]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds.count("marker") == 22
    count = sum(v.size for layer in net.layers for v in layer.params.values() if isinstance(v, np.ndarray))
    assert count == 5_614_592


@pytest.mark.parametrize("cut", [0, 1, 40, 300, 0.5, -1])
def test_reader_refuses_a_truncated_file(dat_file, cut):
    data = dat_file.read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else cut % len(data) if cut < 0 else cut
    with pytest.raises(DlibFormatError, match=r"truncated|file ends") as e:
        read_dlib_network(data[:end])
    assert isinstance(e.value, ModelLoadError)


def test_reader_refuses_garbled_files(dat_file, tmp_path):
    data = bytearray(dat_file.read_bytes())
    assert data[0x1F:0x21] == b"\x01\x02"  # a layer's version: 2, one byte long
    with pytest.raises(DlibFormatError, match="control byte 0x7f"):
        read_dlib_network(bytes(data[:0x1F] + b"\x7f" + data[0x20:]))
    with pytest.raises(DlibFormatError, match="not text"):
        read_dlib_network(bytes(data[:0x20] + b"\x30" + data[0x21:]))  # version 48: read as a tag's length
    start = data.index(b"input_rgb_image_sized")
    garbled = data[: start + 3] + b"X" + data[start + 4 :]
    with pytest.raises(DlibFormatError, match="input layer"):
        read_dlib_network(bytes(garbled))
    with pytest.raises(DlibFormatError, match="unexpected bytes"):
        read_dlib_network(bytes(data) + b"\x00")
    with pytest.raises(DlibFormatError, match="loss"):
        read_dlib_network(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DlibFormatError, match="cannot read"):
        read_dlib_network(tmp_path / "missing.dat")


def test_another_design_is_refused_by_layer(dat_file):
    net = read_dlib_network(dat_file)
    layers = list(net.layers)
    with pytest.raises(DlibFormatError, match="expected affine"):
        FaceRecogniser.from_dlib(DlibNetwork(net.loss, net.input, tuple(layers[:1] + layers[2:])))
    stride = DlibLayer("con", "con_4", {**layers[0].params, "stride": (1, 1)})
    with pytest.raises(DlibFormatError, match="stride"):
        FaceRecogniser.from_dlib(DlibNetwork(net.loss, net.input, (stride, *layers[1:])))


# -- against dlib --------------------------------------------------------------------------------------
def test_load_recogniser_is_frozen_and_in_eval(model):
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.distance_threshold == pytest.approx(SAME_PERSON)


@pytest.mark.parametrize("name", PHOTOS)
def test_descriptor_equals_dlibs_on_real_face_chips(model, faces, name):
    _, _, chip, reference, _ = faces[name]
    with torch.no_grad():
        ours = model(batch(chip))[0].double().numpy()
    assert np.abs(ours - reference).max() <= 1e-4  # measured 2.5e-7


def test_descriptors_tell_the_two_people_apart_and_batch(model, faces):
    chips = torch.cat([batch(faces[name][2]) for name in PHOTOS])
    with torch.no_grad():
        both = model(chips)
    assert float(descriptor_distance(both[0], both[1])) > SAME_PERSON  # measured 0.698
    for i, name in enumerate(PHOTOS):
        assert np.abs(both[i].double().numpy() - faces[name][3]).max() <= 1e-4


@pytest.mark.parametrize("name", PHOTOS)
def test_the_differentiable_chip_gives_dlibs_descriptor_and_gradients(model, faces, name):
    image, points, _, _, whole = faces[name]
    pixels = batch(image).requires_grad_(True)
    descriptor = model(aligned_chip(pixels, chip_geometry(points)))
    assert float(descriptor_distance(descriptor[0].detach().double(), torch.from_numpy(whole))) < 0.01
    descriptor.square().sum().backward()
    grad = pixels.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert (grad[..., :10, :] == 0).all()  # nothing outside the chip
