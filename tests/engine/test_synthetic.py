"""Synthetic faces: seeded, counterfactual, and their attributes readable back from the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from faceshield.engine.synthetic import (
    ATTRIBUTES,
    FaceRenderer,
    all_attribute_vectors,
    held_out_faces,
    make_identity,
    measure,
    regions,
    render_pool,
    target_hit,
)
from faceshield.engine.synthetic.faces import check_attributes


@pytest.mark.parametrize("resolution", [64, 128])
def test_measurement_recovers_every_rendered_attribute(resolution):
    renderer = FaceRenderer(resolution)
    vectors = all_attribute_vectors()
    wrong = []
    for i in range(12):
        spec = make_identity(7, "test", i)
        images, _ = renderer.render_variants(spec)
        reg = regions(spec.layout, resolution)
        for image, c in zip(images, vectors, strict=True):
            got = measure(image, spec.layout, reg).vector
            if not np.array_equal(got, c):
                wrong.append((i, c.tolist(), got.tolist()))
    assert not wrong, wrong


def test_rendering_is_seeded_and_splits_are_disjoint():
    r = FaceRenderer(64)
    c = all_attribute_vectors()[5]
    a = r.render(make_identity(3, "train", 11), c)
    b = r.render(make_identity(3, "train", 11), c)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    other = r.render(make_identity(3, "test", 11), c)
    assert np.abs(other.image.astype(int) - a.image.astype(int)).mean() > 5


def test_attribute_change_touches_only_what_it_names():
    """Counterfactual pairs: one identity, two hair colours -> same background, same mask."""
    r = FaceRenderer(64)
    spec = make_identity(0, "train", 2)
    base = np.array([1, 0, 0, 0, 1], dtype=np.float32)  # black hair, female, young
    blond = np.array([0, 1, 0, 0, 1], dtype=np.float32)
    a, b = r.render(spec, base), r.render(spec, blond)
    np.testing.assert_array_equal(a.mask, b.mask)
    background = a.mask == 0
    np.testing.assert_array_equal(a.image[background], b.image[background])
    assert measure(b.image, spec.layout).hair == 1 and measure(a.image, spec.layout).hair == 0


def test_mask_is_exact_coverage_of_the_foreground():
    r = FaceRenderer(64)
    spec = make_identity(0, "train", 4)
    face = r.render(spec, all_attribute_vectors()[0])
    assert face.mask.dtype == np.float32 and 0 <= face.mask.min() and face.mask.max() <= 1
    assert 0.25 < face.mask.mean() < 0.75  # a head with hair and neck filling a CelebA-like crop
    assert face.mask[0, 0] == 0 and face.mask[spec_centre(spec, 64)] == 1


def spec_centre(spec, resolution):
    return int(spec.layout.cy * resolution), int(spec.layout.cx * resolution)


def test_target_hit_reads_the_asked_attribute_only():
    r = FaceRenderer(64)
    spec = make_identity(0, "test", 0)
    c = np.array([0, 0, 1, 1, 0], dtype=np.float32)  # brown hair, male, old
    m = measure(r.render(spec, c).image, spec.layout)
    assert target_hit(m, "Brown_Hair", c) and target_hit(m, "Male", c) and target_hit(m, "Young", c)
    assert not target_hit(m, "Blond_Hair", np.array([0, 1, 0, 1, 0]))
    assert not target_hit(m, "Young", np.array([0, 0, 1, 1, 1]))


def test_pool_is_the_same_in_one_process_or_several():
    one = render_pool(5, "train", 6, 32, workers=1)
    two = render_pool(5, "train", 6, 32, workers=2)
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.masks, two.masks)
    assert one.images.shape == (6, 12, 32, 32, 3) and one.masks.dtype == np.uint8


def test_held_out_faces_are_seeded_with_valid_attributes():
    faces = held_out_faces(0, 5, 64)
    again = held_out_faces(0, 5, 64)
    for f, g in zip(faces, again, strict=True):
        np.testing.assert_array_equal(f.image, g.image)
        check_attributes(f.attributes)
    assert len({tuple(f.attributes) for f in held_out_faces(0, 40, 32)}) > 6


def test_bad_attribute_vectors_and_sizes_are_refused():
    with pytest.raises(ValueError, match="exactly one hair colour"):
        check_attributes([1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="5 values"):
        check_attributes([1, 0, 0])
    with pytest.raises(ValueError, match="multiple of 4"):
        FaceRenderer(30)
    with pytest.raises(ValueError, match="unknown attribute"):
        target_hit(
            measure(
                FaceRenderer(64).render(make_identity(0, "test", 0), all_attribute_vectors()[0]).image,
                make_identity(0, "test", 0).layout,
            ),
            "Bald",
            np.zeros(5),
        )
    with pytest.raises(ValueError, match="unknown split"):
        make_identity(0, "dev", 0)
    assert ATTRIBUTES == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
