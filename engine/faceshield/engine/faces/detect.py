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
tenth of the time), faces down to MIN_FACE (20) pixels at that scale.

`cv2` is imported on first use only. Classifiers are loaded once per thread (OpenCV's
`CascadeClassifier` must not be shared by concurrent callers). Nothing is logged or written.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

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

_local = threading.local()


class DetectorUnavailable(FaceShieldError):
    """OpenCV (with its cascade files) is not installed."""


def _classifiers():
    """(cv2, (frontal, profile)) for this thread."""
    found = getattr(_local, "loaded", None)
    if found is None:
        try:
            import cv2
        except ImportError:
            raise DetectorUnavailable(
                "face detection needs OpenCV: pip install 'opencv-python-headless<5' (or give face boxes)"
            ) from None
        root = getattr(getattr(cv2, "data", None), "haarcascades", "")
        found = []
        for name in (FRONTAL_FILE, PROFILE_FILE):
            c = cv2.CascadeClassifier(root + name) if hasattr(cv2, "CascadeClassifier") else None
            if c is None or c.empty():
                raise DetectorUnavailable(
                    f"OpenCV {cv2.__version__} ships no {name} (OpenCV 5 dropped the cascades): "
                    "pip install 'opencv-python-headless<5'"
                )
            found.append(c)
        found = _local.loaded = (cv2, tuple(found))
    return found


def _boxes(rects) -> list[BoxTuple]:
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in rects]


def detect_faces(image: np.ndarray, min_face: int = MIN_FACE, max_side: int = DETECT_MAX_SIDE) -> list[BoxTuple]:
    """Tight face boxes (left, top, right, bottom) in an (H, W, 3) uint8 RGB image, largest first."""
    cv2, (frontal, profile) = _classifiers()
    height, width = image.shape[:2]
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    factor = max(height, width) / max_side
    if factor > 1:
        gray = cv2.resize(gray, (round(width / factor), round(height / factor)), interpolation=cv2.INTER_AREA)
    else:
        factor = 1.0
    gray = cv2.equalizeHist(gray)
    size = (min_face, min_face)
    found = _boxes(frontal.detectMultiScale(gray, SCALE_STEP, FRONTAL_NEIGHBOURS, minSize=size))
    w = gray.shape[1]
    turned = _boxes(profile.detectMultiScale(gray, SCALE_STEP, PROFILE_NEIGHBOURS, minSize=size))
    mirrored = _boxes(
        profile.detectMultiScale(np.ascontiguousarray(gray[:, ::-1]), SCALE_STEP, PROFILE_NEIGHBOURS, minSize=size)
    )
    turned += [(w - r, t, w - left, b) for left, t, r, b in mirrored]
    boxes = [scale(b, factor, height, width) for b in merge(found, merge([], turned))]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def largest(boxes: Sequence[BoxTuple], count: int) -> list[BoxTuple]:
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:count]
