"""Target labels follow StarGAN's create_labels."""

import pytest
import torch

from faceshield.engine.errors import InvalidInputError
from faceshield.engine.models.labels import create_labels

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def test_hair_colour_is_exclusive_and_other_attributes_flip():
    c_org = torch.tensor([[1.0, 0, 0, 1, 1]])  # black-haired young man
    c = create_labels(c_org, ATTRS)
    assert c.shape == (1, 5, 5)
    assert c[0].tolist() == [
        [1, 0, 0, 1, 1],  # -> black hair (already)
        [0, 1, 0, 1, 1],  # -> blond: black cleared
        [0, 0, 1, 1, 1],  # -> brown
        [1, 0, 0, 0, 1],  # Male flipped
        [1, 0, 0, 1, 0],  # Young flipped
    ]


def test_all_zero_original_and_subset_of_targets():
    c = create_labels(torch.zeros(2, 5), ATTRS, ["Male", "Blond_Hair"])
    assert c.shape == (2, 2, 5)
    assert c[0, 0].tolist() == [0, 0, 0, 1, 0]
    assert c[1, 1].tolist() == [0, 1, 0, 0, 0]


def test_unknown_attribute_and_bad_shapes_are_refused():
    with pytest.raises(InvalidInputError, match="Bald") as err:
        create_labels(torch.zeros(1, 5), ATTRS, ["Bald"])
    assert err.value.field == "targets"
    with pytest.raises(InvalidInputError) as err:
        create_labels(torch.zeros(1, 4), ATTRS)
    assert err.value.field == "original_attributes"
    with pytest.raises(InvalidInputError):
        create_labels(torch.zeros(1, 5), ATTRS, [])
