"""Faces found in real photos: the detector, the head box, the no-face choice, and a group
photo protected face by face with one perturbation and nothing touched outside the boxes."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from faceshield.engine import AttackConfig, ProtectRequest
from faceshield.engine import requests as engine_requests
from faceshield.engine.faces import MAX_FACES, DetectorUnavailable, NoFaceError, choose_faces, detect_faces, head_box
from faceshield.engine.faces import choice as choice_module
from faceshield.engine.faces import detect as detect_module
from tests.photos import FACES, group_photo, overlap, photo
from tests.service.servers import tiny_engine


def test_head_box_is_the_square_grown_by_the_factor_and_kept_inside():
    assert head_box((100, 100, 150, 150), 400, 400) == (85, 85, 165, 165)  # 50 x 1.6 = 80, same centre
    assert head_box((100, 100, 150, 170), 400, 400) == (69, 79, 181, 191)  # the longer side, squared
    assert head_box((0, 0, 50, 50), 400, 400) == (0, 0, 80, 80)  # moved inside, still square
    assert head_box((350, 350, 400, 400), 400, 400) == (320, 320, 400, 400)
    assert head_box((10, 10, 90, 90), 100, 300) == (0, 0, 100, 100)  # clipped to the short side


@pytest.mark.parametrize("name", sorted(FACES))
def test_the_face_of_each_real_photo_is_found(name):
    found = detect_faces(photo(name))
    assert len(found) == 1, found
    assert overlap(found[0], FACES[name]) > 0.6


def tight_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The face cut as an aligned selfie app cuts it: dlib's chip with no padding (the face
    fills the frame)."""
    import torch

    from faceshield.engine.faces.landmarks import find_landmarks
    from faceshield.engine.ops.chip import aligned_chip, chip_geometry

    points = find_landmarks(image).points
    chip = aligned_chip(
        torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float(), chip_geometry(points, size, 0.0), size
    )
    return chip[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.mark.parametrize("size", [112, 256])
def test_a_tight_face_crop_is_found_and_aligned_with_a_border(size):
    from faceshield.engine.faces.landmarks import find_landmarks

    crop = tight_crop(photo("astronaut"), size)
    cv2, (frontal, profile) = detect_module._classifiers()
    gray = cv2.equalizeHist(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
    assert detect_module._search(frontal, profile, gray, 20) == []  # a cascade's window must fit inside
    found = detect_faces(crop)  # found again with a border, the box moved back inside the crop
    assert len(found) == 1 and all(0 <= v <= size for v in found[0])
    assert (found[0][2] - found[0][0]) > size / 2  # the face fills the frame
    choice = choose_faces(crop)
    assert choice.source == "detected" and choice.boxes == ((0, 0, size, size),)  # the head region: all of it
    marks = find_landmarks(crop, choice.boxes[0])
    assert marks.ok and ((marks.points >= 0) & (marks.points < size)).all()  # eyes and nose inside the crop


def test_dlib_finds_the_face_the_cascades_miss(monkeypatch):
    crop = tight_crop(photo("astronaut"), 160)
    monkeypatch.setattr(detect_module, "detect_faces", lambda image: [])  # the cascades see nothing
    choice = choose_faces(crop)
    assert choice.source == "detected" and len(choice.boxes) == 1


def test_every_pasted_face_is_found_and_nothing_else():
    scene, regions = group_photo()
    choice = choose_faces(scene)
    assert choice.source == "detected" and len(choice.boxes) == len(regions) == 3
    for region in regions:  # each pasted face has exactly one tight box inside it
        assert sum(overlap(f, region) > 0.9 for f in choice.detected) == 1


def test_no_face_is_refused_or_the_centre_square_when_asked():
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError) as refused:
        choose_faces(noise)
    assert refused.value.field == "faces" and "no face was found" in str(refused.value)
    centre = choose_faces(noise, no_face="centre")
    assert centre.boxes is None and centre.source == "no-face-centre"
    assert choose_faces(noise, detect=False).source == "centre"
    given = choose_faces(noise, given=[(0, 0, 50, 50)])
    assert given.boxes == ((0, 0, 50, 50),) and given.source == "given"
    with pytest.raises(ValueError, match="no_face"):
        choose_faces(noise, no_face="guess")


def test_past_the_engine_limit_the_largest_faces_are_kept_and_the_rest_counted(monkeypatch):
    assert MAX_FACES == engine_requests.MAX_FACES
    many = [(i * 10, 0, i * 10 + 20 + i, 20 + i) for i in range(MAX_FACES + 3)]
    from faceshield.engine.faces import detect as detect_module

    monkeypatch.setattr(detect_module, "detect_faces", lambda image: sorted(many, key=lambda b: -(b[2] - b[0])))
    got = choice_module.choose_faces(np.zeros((100, 800, 3), np.uint8))
    assert len(got.boxes) == MAX_FACES and got.dropped == 3 and len(got.detected) == MAX_FACES + 3


def test_a_group_photo_is_perturbed_in_every_face_box_and_nowhere_else():
    scene, _ = group_photo()
    boxes = choose_faces(scene).boxes
    engine = tiny_engine()
    config = AttackConfig.for_method("pgd", steps=2, seed=1)
    outcome = engine.protect([ProtectRequest(scene, targets=["Male"], face_box=list(boxes))], config)[0]
    diff = np.abs(outcome.protected.astype(int) - scene.astype(int)).max(axis=2)
    inside = np.zeros(diff.shape, bool)
    for left, top, right, bottom in boxes:
        inside[top:bottom, left:right] = True
        assert (diff[top:bottom, left:right] > 0).mean() > 0.5  # this face carries the perturbation
    assert diff[~inside].max() == 0  # not one pixel outside every box changed
    assert outcome.boxes == boxes and {t.face for t in outcome.targets} == {0, 1, 2}


def _fresh_thread_state(monkeypatch):
    """As on a thread that has not loaded the classifiers yet."""
    monkeypatch.setattr(detect_module, "_local", threading.local())


def test_the_cascades_are_found_though_cv2_is_the_bare_native_module(monkeypatch):
    """OpenCV's loader swaps its native module in while it imports: a second thread importing cv2
    then can get a module without `cv2.data` (CI saw the folder job's reader threads fail so)."""
    import cv2

    bare = cv2._native  # what the loader hands out mid-import
    assert not hasattr(bare, "data")
    monkeypatch.setitem(sys.modules, "cv2", bare)
    _fresh_thread_state(monkeypatch)
    image = photo("astronaut")
    assert len(detect_faces(image)) == 1


def test_a_cascade_other_than_the_measured_one_is_refused(monkeypatch):
    monkeypatch.setitem(detect_module.CASCADE_SHA256, detect_module.FRONTAL_FILE, "0" * 64)
    _fresh_thread_state(monkeypatch)
    with pytest.raises(DetectorUnavailable, match="not the cascade FaceShield was measured with"):
        detect_faces(photo("astronaut"))
