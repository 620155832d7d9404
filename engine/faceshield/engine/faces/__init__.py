"""Faces in real photos: a detector, the head region the victims expect, and the no-face choice.

    from faceshield.engine.faces import choose_faces
    choice = choose_faces(image, no_face="centre")   # image: (H, W, 3) uint8 RGB
    ProtectRequest(image, face_box=choice.boxes)

Imports neither PyTorch nor OpenCV until a detection runs.
"""

from .boxes import HEAD_FACTOR, head_box
from .choice import MAX_FACES, NO_FACE_CHOICES, FaceChoice, NoFaceError, choose_faces
from .detect import DETECTOR_NAME, DetectorUnavailable, detect_faces

__all__ = [
    "DETECTOR_NAME",
    "HEAD_FACTOR",
    "MAX_FACES",
    "NO_FACE_CHOICES",
    "DetectorUnavailable",
    "FaceChoice",
    "NoFaceError",
    "choose_faces",
    "detect_faces",
    "head_box",
]
