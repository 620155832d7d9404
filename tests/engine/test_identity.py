"""The identity verdict: does the deepfake still pass a face check as the person, and does the
protected photo? Judged by dlib's own recogniser on 8-bit images."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.engine import AttackConfig, FaceShieldEngine, Policy, ProtectRequest
from faceshield.engine.attack.identity_check import (
    BROKEN,
    NO_IDENTITY,
    NOT_MEASURED,
    PASSES,
    EditIdentity,
    FaceKept,
    IdentityJudge,
    IdentityReport,
    edit_state,
    paste_edit,
)
from faceshield.engine.attack.identity_objective import paste
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import to_tensor
from faceshield.engine.models.translator import TranslatorSpec, build_translator
from faceshield.engine.models.victims import Unconditional, Victim
from faceshield.engine.modelset import ModelSet
from faceshield.engine.ops.geometry import Box, crop_resize
from tests.helpers import ASTRONAUT

pytest.importorskip("dlib")
FACE_BOX = (150, 42, 297, 189)  # the detector's head region on the sample portrait


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.array(Image.open(ASTRONAUT).convert("RGB"))


def test_edit_states_follow_the_thresholds():
    assert edit_state(0.2, 0.65) == BROKEN and edit_state(0.2, 0.59) == PASSES
    assert edit_state(0.7, 0.2) == NO_IDENTITY  # the clean edit is no longer the person: nothing to break
    assert edit_state(None, 0.9) == NOT_MEASURED and edit_state(0.2, None) == NOT_MEASURED


def test_protected_needs_every_face_kept_and_every_edit_broken_after_each_processing():
    kept, lost = FaceKept(0, 0.1), FaceKept(0, 0.35)
    broken = EditIdentity("v", "t", 0, 0.2, 0.7, {"jpeg75": 0.65})
    weak = EditIdentity("v", "t", 0, 0.2, 0.7, {"jpeg75": 0.55})
    assert IdentityReport((kept,), (broken,), ("jpeg75",)).protected
    assert not IdentityReport((lost,), (broken,), ("jpeg75",)).protected  # the photo no longer its owner
    report = IdentityReport((kept,), (weak,), ("jpeg75",))
    assert not report.protected and report.problems() == ["v/t after jpeg75 passes as the person (0.55)"]
    nothing = EditIdentity("v", "t", 0, 0.7, 0.75, {"jpeg75": 0.8})  # no edit of the original passes as the person
    vacuous = IdentityReport((kept,), (nothing,))
    assert not vacuous.protected and "nothing to break" in vacuous.problems()[0]  # no protection claimed
    assert IdentityReport((kept,), (broken, nothing), ("jpeg75",)).protected  # one broken, one harmless
    unmeasured = IdentityReport((FaceKept(0, None, "dlib finds no face"),), (EditIdentity("v", "t", 0, None, None),))
    assert not unmeasured.protected  # never protected on a guess
    assert unmeasured.problems() == ["face 0: identity not measured (dlib finds no face)"]


def test_the_judge_finds_the_person_and_an_unchanged_edit_is_still_them(astronaut):
    judge = IdentityJudge()
    face = judge.face(astronaut, FACE_BOX)
    assert face.measured and face.landmarks.shape == (5, 2)
    assert judge.distance(astronaut, face) < 1e-6  # the original against itself
    left, top, right, bottom = FACE_BOX
    same = np.asarray(Image.fromarray(astronaut[top:bottom, left:right]).resize((128, 128), Image.Resampling.BILINEAR))
    assert judge.distance(paste_edit(astronaut, FACE_BOX, same), face) < 0.3  # a faithful "edit" passes
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert judge.distance(paste_edit(astronaut, FACE_BOX, noise), face) >= 0.6  # noise over the face: not them


def test_a_face_dlib_cannot_find_is_not_measured_with_the_reason():
    grey = np.full((160, 160, 3), 128, np.uint8)
    face = IdentityJudge().face(grey, (0, 0, 160, 160))
    assert not face.measured and face.person is None and face.reason


def test_the_differentiable_paste_equals_the_8_bit_paste_within_a_level(astronaut):
    edit = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    reference = paste_edit(astronaut, FACE_BOX, edit).astype(np.float32)
    ours = paste(to_tensor(astronaut)[None], Box(*FACE_BOX), to_tensor(edit)[None])[0].permute(1, 2, 0).numpy()
    ours = (ours + 1) * 127.5
    assert np.abs(ours - reference).mean() < 1.0  # Pillow's and torch's bilinear differ at the edges only
    outside = np.ones(astronaut.shape[:2], bool)
    outside[FACE_BOX[1] : FACE_BOX[3], FACE_BOX[0] : FACE_BOX[2]] = False
    assert np.abs(ours[outside] - astronaut[outside]).max() < 1e-3  # nothing moves outside the box


def tone_victim(resolution: int = 64) -> Victim:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        t = build_translator(TranslatorSpec("resnet", ngf=4, blocks=1, norm="instance-affine"))
    return Victim("tone", "translator", Unconditional(t.eval().requires_grad_(False)), resolution)


def test_the_identity_verdict_is_reported_and_never_calls_an_unmeasured_face_protected():
    grey = np.full((96, 96, 3), 120, np.uint8)
    engine = FaceShieldEngine(ModelSet("tone", "1", victims=[tone_victim(32)]), verdict="identity")
    out = engine.protect([ProtectRequest(grey)], AttackConfig.for_method("pgd", steps=2))[0]
    assert out.verdict.rule == "identity" and out.verdict.identity is not None
    assert not out.verdict.protected and "identity not measured" in out.verdict.identity.problems()[0]
    with pytest.raises(InvalidInputError, match="verdict"):
        FaceShieldEngine(ModelSet("tone", "1", victims=[tone_victim(32)]), verdict="vibes")


class NearIdentity(torch.nn.Module):
    """An edit that keeps the face: x plus a small seeded translator's output."""

    def __init__(self):
        super().__init__()
        self.t = tone_victim().generator.translator

    def forward(self, x):
        return (x + 0.2 * self.t(x)).clamp(-1, 1)


@pytest.mark.slow
def test_the_identity_method_moves_the_judge_where_output_mse_does_not(astronaut):
    """A seeded victim that keeps the face, on the sample portrait: 10 steps of the identity method
    push its deepfake away from the person (dlib, on the 8-bit result; measured 0.26 -> 0.48),
    while 10 steps of PGD on output MSE leave it the person (0.26 -> 0.27) although they move the
    output five times more by MSE. The photo stays its owner either way."""
    victim = Victim("near", "translator", Unconditional(NearIdentity()), 64)
    engine = FaceShieldEngine(ModelSet("near", "1", victims=[victim]), verdict="identity")
    request = ProtectRequest(astronaut, face_box=FACE_BOX, seed=3)
    ident = engine.protect([request], AttackConfig.for_method("identity", steps=10), policy=Policy())[0]
    mse = engine.protect([request], AttackConfig.for_method("pgd", steps=10), policy=Policy())[0]
    a, b = ident.verdict.identity.edits[0], mse.verdict.identity.edits[0]
    assert a.clean < 0.6 and a.clean == pytest.approx(b.clean)
    assert a.protected > a.clean + 0.1, a  # the identity method moved the deepfake away from the person
    assert b.protected < b.clean + 0.05, b  # output MSE alone did not
    assert mse.targets[0].mse > 2 * ident.targets[0].mse  # although it changed the output more
    assert ident.verdict.identity.faces[0].kept and mse.verdict.identity.faces[0].kept


def _victim_edit(victim, box, photo: np.ndarray) -> torch.Tensor:
    """The victim's float edit of one photo's face crop, made directly (the reference the engine's
    verify-after figures and the paper-tables benchmark's are held to)."""
    with torch.no_grad():
        return victim.generator(crop_resize(to_tensor(photo)[None], box, victim.resolution), None)[0]


def test_the_verdict_after_processing_is_what_the_victim_makes_of_the_processed_photo(astronaut):
    """verify_after: each processing's Ruiz figure and each edit's face-check distance are those of
    the victim's own edit of the processed protected photo (one pass serves both)."""
    from faceshield.engine.io.processing import processing

    victim = Victim("near", "translator", Unconditional(NearIdentity()), 64)
    engine = FaceShieldEngine(ModelSet("near", "1", victims=[victim]), verdict="identity")
    request = ProtectRequest(astronaut, face_box=FACE_BOX, seed=3)
    after = ("jpeg75", "downscale2")
    out = engine.protect([request], AttackConfig.for_method("pgd", steps=3), policy=Policy(verify_after=after))[0]
    box, face = engine.check(request).boxes[0], engine.judge.face(astronaut, FACE_BOX)
    edit = out.verdict.identity.edits[0]
    assert set(out.verdict.after) == set(edit.after) == set(after)

    def edited(photo):
        y = _victim_edit(victim, box, photo)
        return y, ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()

    for p in after:
        photo, original = processing(p)(out.protected), processing(p)(astronaut)
        (y, u8), (ref, _) = edited(photo), edited(original)
        assert out.verdict.after[p] == (float((y - ref).pow(2).mean()) > 0.05)
        assert edit.after[p] == pytest.approx(engine.judge.distance(paste_edit(photo, face.box, u8), face), abs=1e-6)
    assert edit.after["jpeg75"] != pytest.approx(edit.protected, abs=1e-4)  # measured on the processed photo


def test_the_paper_tables_benchmark_measures_processing_as_the_engine_does(astronaut):
    """benchmarks/paper_tables_celeba.py makes the processed original's edits once per face and
    shares them across rows; its figures must be the engine's own verify-after figures."""
    import importlib
    import sys
    from pathlib import Path

    from faceshield.engine.io.processing import processing
    from faceshield.engine.metrics import SUCCESS_MSE

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        tables = importlib.import_module("paper_tables_celeba")
    finally:
        sys.path.pop(0)
    victim = Victim("near", "translator", Unconditional(NearIdentity()), 64)
    engine = FaceShieldEngine(ModelSet("near", "1", victims=[victim]), verdict="identity")
    request = ProtectRequest(astronaut, face_box=FACE_BOX, seed=3)
    after = tables.AFTER
    out = engine.protect([request], AttackConfig.for_method("pgd", steps=3), policy=Policy(verify_after=after))[0]
    measured = tables.Measurer(engine, astronaut, FACE_BOX).after(out.protected)
    (edit,) = out.verdict.identity.edits
    box = engine.check(request).boxes[0]
    edited = functools.partial(_victim_edit, victim, box)
    assert tables.RUIZ_MSE == SUCCESS_MSE  # the report's rule is the engine's

    for p in after:
        assert measured[p]["distance"] == [pytest.approx(edit.after[p], abs=1e-6)]
        (mse,) = measured[p]["mse"]
        # Ruiz's rule against the victim's edit of the processed original, not of the original
        expected = edited(processing(p)(out.protected)) - edited(processing(p)(astronaut))
        assert mse == pytest.approx(float(expected.pow(2).mean()), rel=1e-5)
        assert (mse > tables.RUIZ_MSE) == out.verdict.after[p]
    assert measured["jpeg75"]["distance"] != measured["downscale2"]["distance"]  # each on its own photo
