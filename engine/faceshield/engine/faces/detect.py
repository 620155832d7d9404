"""The face detector: OpenCV's Haar cascades, frontal and profile.

Why these: their weights ship inside `opencv-python-headless` (Apache-2.0; the cascade files
under OpenCV's BSD-style licence), which installs beside this PyTorch with nothing pinned or
downgraded, needs no download at run time and runs on any CPU. OpenCV 5 dropped the cascade
files from its wheels, hence `opencv-python-headless<5`. Measured on the real photos at hand
(`benchmarks/face_recall.py`): 98 of skimage's 100 LFW faces, none of its 100 non-faces, and
the face in each of astronaut, camera (a three-quarter profile, found only by the profile
cascade) and grace_hopper.

The frontal cascade (`haarcascade_frontalface_alt2`, the most precise of OpenCV's frontal ones
on those photos) runs first; the profile cascade runs on the image and on its mirror (it knows
faces turned one way only), and a profile box is kept where it overlaps no frontal box. Large
photos are searched at DETECT_MAX_SIDE pixels on their longer side (a 12 MP photo in about a
tenth of the time), faces down to MIN_FACE (20) pixels at that scale. Where neither cascade
finds a face, both look again with a border around the image: a tight face crop (the face
filling the frame) is otherwise missed, since a cascade's window must lie inside the image.

`cv2` is imported on first use only. Classifiers are loaded once per thread (OpenCV's
`CascadeClassifier` must not be shared by concurrent callers). Nothing is logged or written.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FaceShieldError
from .boxes import BoxTuple, merge, scale

DETECTOR_NAME = "opencv-haar: frontalface_alt2 + profileface (both sides)"
FRONTAL_FILE = "haarcascade_frontalface_alt2.xml"
PROFILE_FILE = "haarcascade_profileface.xml"
DETECT_MAX_SIDE = 1280
MIN_FACE = 20  # both cascades scan a 20 x 20 window; nothing smaller is found
SCALE_STEP = 1.1
FRONTAL_NEIGHBOURS = 3
PROFILE_NEIGHBOURS = 4
# Where nothing is found: (border as a fraction of the long side, how it is filled), tried in turn.
# Measured on 97 tight CelebA crops (dlib chips, padding 0): the plain search finds 1-3 faces,
# an edge-replicated 25% border about 80, a mean-grey 50% border about 82, the two together 88.
BORDERS = ((0.25, "edge"), (0.5, "constant"))

# The cascade files' sha256 (the same in opencv-python-headless 4.8.1 and 4.14.0): the recall above
# was measured with these, so another file is refused rather than silently used.
CASCADE_SHA256 = {
    FRONTAL_FILE: "7b0c967d9abbdfbde025eb9c786947d151b6426040d07a8f9562ed8fd90724b4",
    PROFILE_FILE: "b39a4a3be45539db146a7fc1d3e761a292c196eb88421185e6a615b3055e612d",
}

_local = threading.local()
_import_lock = threading.Lock()


class DetectorUnavailable(FaceShieldError):
    """OpenCV (with its cascade files) is not installed."""


def _import_cv2():
    """`cv2`, imported under a lock. OpenCV's loader is not thread-safe: while it swaps its native
    module in, a second thread importing `cv2` can get that bare module (no `cv2.data`), and the
    folder job's reader threads all reach here at once on their first image."""
    with _import_lock:
        try:
            import cv2
        except ImportError:
            raise DetectorUnavailable(
                "face detection needs OpenCV: pip install 'opencv-python-headless<5' (or give face boxes)"
            ) from None
        return cv2


def cascade_path(name: str) -> Path:
    """The cascade file inside the installed `cv2` package, found on sys.path (not through
    `cv2.data` or sys.modules, which may hold the bare native module), checked against the hash
    the recall figures were measured with."""
    spec = importlib.machinery.PathFinder.find_spec("cv2")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "data" / name
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != CASCADE_SHA256[name]:
                raise DetectorUnavailable(
                    f"{path} is not the cascade FaceShield was measured with (sha256 {digest[:12]}..., "
                    f"expected {CASCADE_SHA256[name][:12]}...): reinstall 'opencv-python-headless<5'"
                )
            return path
    raise DetectorUnavailable(
        f"the installed OpenCV ships no {name} (OpenCV 5 dropped the cascades): pip install 'opencv-python-headless<5'"
    )


def _classifiers():
    """(cv2, (frontal, profile)) for this thread."""
    found = getattr(_local, "loaded", None)
    if found is None:
        cv2 = _import_cv2()
        loaded = []
        for name in (FRONTAL_FILE, PROFILE_FILE):
            classifier = cv2.CascadeClassifier(str(cascade_path(name)))
            if classifier.empty():
                raise DetectorUnavailable(f"OpenCV {cv2.__version__} could not load {name}")
            loaded.append(classifier)
        found = _local.loaded = (cv2, tuple(loaded))
    return found


def _boxes(rects) -> list[BoxTuple]:
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in rects]


def _search(frontal, profile, gray: np.ndarray, min_face: int) -> list[BoxTuple]:
    """Both cascades over one (equalised) grey image: frontal boxes, then profile boxes (both
    sides) that overlap none of them."""
    size = (min_face, min_face)
    found = _boxes(frontal.detectMultiScale(gray, SCALE_STEP, FRONTAL_NEIGHBOURS, minSize=size))
    w = gray.shape[1]
    turned = _boxes(profile.detectMultiScale(gray, SCALE_STEP, PROFILE_NEIGHBOURS, minSize=size))
    mirrored = _boxes(
        profile.detectMultiScale(np.ascontiguousarray(gray[:, ::-1]), SCALE_STEP, PROFILE_NEIGHBOURS, minSize=size)
    )
    turned += [(w - r, t, w - left, b) for left, t, r, b in mirrored]
    return merge(found, merge([], turned))


def _search_with_border(frontal, profile, gray: np.ndarray, min_face: int) -> list[BoxTuple]:
    """The cascades again on the image with a border added (BORDERS, first that finds a face),
    boxes moved back and clipped to the image. Why: a cascade's window must lie inside the image,
    so a tight face crop (the face fills the frame: a payment app's aligned selfie) is missed;
    with a border it is found (benchmarks/results/tight-crops.md)."""
    height, width = gray.shape
    for fraction, mode in BORDERS:
        pad = round(fraction * max(height, width))
        if mode == "edge":
            padded = np.pad(gray, pad, mode="edge")
        else:
            padded = np.pad(gray, pad, mode="constant", constant_values=int(gray.mean()))
        boxes = []
        for left, top, right, bottom in _search(frontal, profile, padded, min_face):
            box = (max(left - pad, 0), max(top - pad, 0), min(right - pad, width), min(bottom - pad, height))
            if box[2] - box[0] >= min_face // 2 and box[3] - box[1] >= min_face // 2:
                boxes.append(box)
        if boxes:
            return boxes
    return []


def detect_faces(image: np.ndarray, min_face: int = MIN_FACE, max_side: int = DETECT_MAX_SIDE) -> list[BoxTuple]:
    """Tight face boxes (left, top, right, bottom) in an (H, W, 3) uint8 RGB image, largest first.
    Where none is found, the search is repeated with a border around the image (tight crops)."""
    cv2, (frontal, profile) = _classifiers()
    height, width = image.shape[:2]
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    factor = max(height, width) / max_side
    if factor > 1:
        gray = cv2.resize(gray, (round(width / factor), round(height / factor)), interpolation=cv2.INTER_AREA)
    else:
        factor = 1.0
    gray = cv2.equalizeHist(gray)
    found = _search(frontal, profile, gray, min_face) or _search_with_border(frontal, profile, gray, min_face)
    boxes = [scale(b, factor, height, width) for b in found]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def largest(boxes: Sequence[BoxTuple], count: int) -> list[BoxTuple]:
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:count]
