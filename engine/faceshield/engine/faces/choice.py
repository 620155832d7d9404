"""Which face boxes an image is protected with: the caller's, the detector's, or the centre square.

Detection runs at the edge (the CLI, the service's convert step) and its result is a plain
`face_box` list for the engine. When the detector finds no face the caller's choice decides:
`refuse` (the default: `NoFaceError`, nothing is protected or written) or `centre` (the centre
square, and the result says so). Nothing is guessed silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .boxes import BoxTuple, head_box

NO_FACE_CHOICES = ("refuse", "centre")
MAX_FACES = 32  # the engine's limit per image (requests.MAX_FACES); the largest are kept


class NoFaceError(InvalidInputError):
    def __init__(self, field: str = "faces"):
        super().__init__(
            field,
            "no face was found in the image; give its face box(es), or ask for the centre square when none is found",
        )


@dataclass(frozen=True)
class FaceChoice:
    """boxes: what the engine gets as `face_box` (None: the centre square, which it chooses).
    source: "given", "detected", "centre" (asked for) or "no-face-centre" (none found, the centre
    square as the caller chose). detected: the detector's tight boxes (all of them);
    dropped: faces found past MAX_FACES, left unprotected (the smallest)."""

    boxes: tuple[BoxTuple, ...] | None
    source: str
    detected: tuple[BoxTuple, ...] = ()
    dropped: int = 0


def choose_faces(
    image: np.ndarray,
    given: Sequence[Sequence[int]] | None = None,
    detect: bool = True,
    no_face: str = "refuse",
    field: str = "faces",
) -> FaceChoice:
    """The caller's boxes when given; else, with `detect`, a head box per face found; else the centre."""
    if no_face not in NO_FACE_CHOICES:
        raise InvalidInputError(field, f"no_face must be one of {', '.join(NO_FACE_CHOICES)}, got {no_face!r}")
    if given:
        return FaceChoice(tuple(tuple(int(v) for v in b) for b in given), "given")  # type: ignore[misc]
    if not detect:
        return FaceChoice(None, "centre")
    from .detect import detect_faces

    found = detect_faces(image) or _dlib_face(image)
    if not found:
        if no_face == "refuse":
            raise NoFaceError(field)
        return FaceChoice(None, "no-face-centre")
    h, w = image.shape[:2]
    kept = found[:MAX_FACES]
    return FaceChoice(tuple(head_box(b, h, w) for b in kept), "detected", tuple(found), len(found) - len(kept))


def _dlib_face(image: np.ndarray) -> list[BoxTuple]:
    """dlib's largest face where the cascades find none: it finds some tight crops they miss
    (on 97 CelebA faces cut with no padding, 91-92 found by both against 87-88 by the cascades)
    and the identity verdict needs dlib to see the face anyway."""
    from .landmarks import find_landmarks

    found = find_landmarks(image)
    if found.rect is None:
        return []
    h, w = image.shape[:2]
    left, top, right, bottom = found.rect  # dlib's corners are inclusive
    box = (max(left, 0), max(top, 0), min(right + 1, w), min(bottom + 1, h))
    return [box] if box[2] > box[0] and box[3] > box[1] else []
