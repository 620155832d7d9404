"""Does the deepfake still pass as the person? Judged as a face-payment check would judge it.

A protection is worth something when what an editing model makes of the protected photo no longer
matches its owner, while the protected photo itself still does. This module measures both with
dlib's face-recognition ResNet, run by dlib itself on 8-bit images (the judge), per face:

- the person: the descriptor of the ORIGINAL photo's aligned chip (dlib's 5-point landmarks,
  150 px chip, padding 0.25);
- `kept`: the protected photo's chip, cut with the original's landmarks (so only pixels differ),
  is at distance < `KEPT` (0.3) from the person;
- per edit (victim, target): the victim's output for the face crop, rounded to 8 bits, resized
  back over the face box of the photo it was made from, cut with the original's landmarks: the
  edit is `broken` at distance >= `SAME_PERSON` (0.6, dlib's own threshold). Where the edit of the
  ORIGINAL is already that far from the person, there is "no identity to break" and it is not
  counted either way; but a verdict with no edit broken at all claims nothing.

A face dlib cannot find or align is "not measured", with the reason; never a guessed number.
The judge is the recogniser the identity objective uses: other recognisers (a bank's, an
attacker's) are not measured here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..models.recogniser import CHIP_PADDING, CHIP_SIZE, KEPT, RECOGNISER_FILE, SAME_PERSON

# States of one edit of one face.
BROKEN = "broken"  # the deepfake no longer passes as the person
PASSES = "passes"  # the deepfake still passes: not protected
NO_IDENTITY = "no identity to break"  # the clean edit itself is no longer the person
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class FaceIdentity:
    """One face of the original photo as the judge sees it: its landmarks and descriptor, or why
    it could not be measured."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray | None  # (5, 2) x, y in image pixels
    rect: tuple[int, int, int, int] | None  # the detection the landmarks were fitted in
    person: np.ndarray | None  # (128,)
    reason: str = ""

    @property
    def measured(self) -> bool:
        return self.person is not None


@dataclass(frozen=True)
class EditIdentity:
    """One edit of one face: distances of the clean edit and of the protected photo's edit."""

    victim: str
    target: str
    face: int
    clean: float | None
    protected: float | None
    after: dict[str, float] = field(default_factory=dict)  # processing -> distance of its edit

    @property
    def state(self) -> str:
        return edit_state(self.clean, self.protected)

    def state_after(self, processing: str) -> str:
        return edit_state(self.clean, self.after.get(processing))


def edit_state(clean: float | None, protected: float | None) -> str:
    if clean is None or protected is None:
        return NOT_MEASURED
    if clean >= SAME_PERSON:
        return NO_IDENTITY
    return BROKEN if protected >= SAME_PERSON else PASSES


class IdentityJudge:
    """dlib's face descriptor and chip cutter, loaded once (the detector and the 5-point
    landmarks are `faces.landmarks`', loaded there once)."""

    _lock = threading.Lock()
    _recogniser = None

    @classmethod
    def _load(cls):
        with cls._lock:
            if cls._recogniser is None:
                import dlib

                from ..faces.landmarks import models_file

                cls._recogniser = dlib.face_recognition_model_v1(str(models_file(RECOGNISER_FILE)))
            return cls._recogniser

    def face(self, image: np.ndarray, box: tuple[int, int, int, int]) -> FaceIdentity:
        """The face in `box` of the original (H, W, 3) uint8 photo."""
        from ..faces.landmarks import find_landmarks

        box = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
        found = find_landmarks(image, box)
        if not found.ok:
            return FaceIdentity(box, None, None, None, found.reason)
        face = FaceIdentity(box, found.points, found.rect, None)
        return FaceIdentity(face.box, face.landmarks, face.rect, self.descriptor(image, face))

    def descriptor(self, image: np.ndarray, face: FaceIdentity) -> np.ndarray:
        """dlib's descriptor of `image`'s chip cut with the face's (original) landmarks."""
        import dlib

        recogniser = self._load()
        assert face.landmarks is not None and face.rect is not None
        rect = dlib.rectangle(*(int(v) for v in face.rect))
        points = dlib.points()
        for x, y in face.landmarks:
            points.append(dlib.point(int(round(x)), int(round(y))))
        shape = dlib.full_object_detection(rect, points)
        with self._lock:  # one dlib network object, not safe to share across threads
            chip = dlib.get_face_chip(np.ascontiguousarray(image), shape, CHIP_SIZE, CHIP_PADDING)
            return np.asarray(recogniser.compute_face_descriptor(chip), dtype=np.float64)

    def distance(self, image: np.ndarray, face: FaceIdentity) -> float:
        assert face.person is not None
        return float(np.linalg.norm(self.descriptor(image, face) - face.person))


def paste_edit(photo: np.ndarray, box: tuple[int, int, int, int], output: np.ndarray) -> np.ndarray:
    """The photo a forger gets: the victim's 8-bit output for the face crop, resized back over the
    face box (bilinear) of the photo it was made from."""
    left, top, right, bottom = (int(v) for v in box)
    out = photo.copy()
    patch = Image.fromarray(np.ascontiguousarray(output)).resize(
        (right - left, bottom - top), Image.Resampling.BILINEAR
    )
    out[top:bottom, left:right] = np.asarray(patch)
    return out


@dataclass(frozen=True)
class FaceKept:
    """The protected photo's own face: its distance from the person (None: not measured, why)."""

    face: int
    distance: float | None
    reason: str = ""

    @property
    def kept(self) -> bool:
        return self.distance is not None and self.distance < KEPT


@dataclass(frozen=True)
class IdentityReport:
    """The identity verdict of one protected image: each face kept? each edit broken?"""

    faces: tuple[FaceKept, ...]
    edits: tuple[EditIdentity, ...]
    after: tuple[str, ...] = ()  # the processings each edit was also judged after

    @property
    def protected(self) -> bool:
        """Every face measured and kept, and every edit's deepfake fails to match the person (or
        has no identity to break), plainly and after each processing asked for; and at least one
        edit broken. Where no edit of the original passes as the person, nothing was protected
        against and no protection is claimed (a generator that cannot make a passing deepfake,
        e.g. a blurry 64 px autoencoder, would otherwise make every photo "protected")."""
        if not self.faces or not all(f.kept for f in self.faces):
            return False
        ok = (BROKEN, NO_IDENTITY)
        every = all(e.state in ok and all(e.state_after(p) in ok for p in self.after) for e in self.edits)
        return every and any(e.state == BROKEN for e in self.edits)

    def problems(self) -> list[str]:
        """What stops `protected`, one phrase each ("vintage/vintage passes as the person (0.31)")."""
        out = []
        for f in self.faces:
            if f.distance is None:
                out.append(f"face {f.face}: identity not measured ({f.reason})")
            elif not f.kept:
                out.append(f"face {f.face}: the protected photo no longer matches its owner ({f.distance:.2f})")
        for e in self.edits:
            name = f"{e.victim}/{e.target}" + (f"@{e.face}" if e.face else "")
            for p, state, d in [
                ("", e.state, e.protected),
                *((p, e.state_after(p), e.after.get(p)) for p in self.after),
            ]:
                if state == PASSES:
                    out.append(f"{name}{' after ' + p if p else ''} passes as the person ({d:.2f})")
                elif state == NOT_MEASURED and e.clean is not None:
                    out.append(f"{name}{' after ' + p if p else ''}: not measured")
        if self.edits and not any(e.state == BROKEN for e in self.edits) and not out:
            out.append("no edit of the original passes as the person: nothing to break, no protection claimed")
        return out


def judge_image(
    judge: IdentityJudge,
    faces: list[FaceIdentity],
    delivered: np.ndarray,
    edits: list[tuple[str, str, int, np.ndarray, np.ndarray]],
    original: np.ndarray,
    after: dict[str, tuple[np.ndarray, dict[tuple[str, str, int], np.ndarray]]] | None = None,
) -> IdentityReport:
    """Judge one protected image. edits: (victim, target, face, clean output, protected output),
    outputs (R, R, 3) uint8 for the face crop; after: processing -> (the processed protected photo,
    (victim, target, face) -> the victim's output for its face crop)."""
    after = after or {}
    kept = []
    for b, f in enumerate(faces):
        if not f.measured:
            kept.append(FaceKept(b, None, f.reason))
        else:
            kept.append(FaceKept(b, judge.distance(delivered, f)))
    rows = []
    for victim, target, b, clean, protected in edits:
        f = faces[b]
        if not f.measured:
            rows.append(EditIdentity(victim, target, b, None, None))
            continue
        d_clean = judge.distance(paste_edit(original, f.box, clean), f)
        d_prot = judge.distance(paste_edit(delivered, f.box, protected), f)
        later = {}
        for p, (photo, outputs) in after.items():
            later[p] = judge.distance(paste_edit(photo, f.box, outputs[(victim, target, b)]), f)
        rows.append(EditIdentity(victim, target, b, d_clean, d_prot, later))
    return IdentityReport(tuple(kept), tuple(rows), tuple(after))
