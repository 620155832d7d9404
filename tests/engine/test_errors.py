"""The engine's typed errors survive pickling (a worker process or a Ray actor raises them, the
parent reports them): same type, field and message."""

from __future__ import annotations

import pickle

import pytest

from faceshield.engine.errors import CheckpointMismatchError, InvalidInputError
from faceshield.engine.evaluation.arbitrary_wheel import NoGradientError
from faceshield.engine.faces.choice import NoFaceError


@pytest.mark.parametrize(
    "error",
    [InvalidInputError("epsilon", "must be in (0, 1]"), NoFaceError(), NoGradientError("arbitrary")],
    ids=["plain", "no-face", "no-gradient"],
)
def test_invalid_input_errors_round_trip_through_pickle(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and isinstance(back, ValueError)
    assert (back.field, back.description, str(back)) == (error.field, error.description, str(error))


def test_checkpoint_mismatch_round_trips_through_pickle():
    error = CheckpointMismatchError("vintage", missing=["a.weight"], mismatched=[f"k{i}" for i in range(10)])
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is CheckpointMismatchError and str(back) == str(error)
    assert back.missing == ["a.weight"] and back.mismatched == error.mismatched
