"""Real photos that installed packages ship, with their credits, licenses and face boxes.

No data set can be downloaded here, and a claim about protection must be measured on real
photos. Three packages FaceShield already installs carry some: scikit-image (its `data`
folder), matplotlib (its sample data). Each photo is read from the installed distribution's
files, never fetched. The face boxes were drawn by hand on each portrait, as a loose head crop
(hair to chin, some margin), the framing CelebA-style face editors are trained on.

Data set names (for `faceshield evaluate`):
    real            every portrait (each at three box scales) and every other photo
    real:portraits  the portraits only, three box scales each
    real:scenes     the other photos, whole image (the centre square is the "face" region)
    real:lfw        scikit-image's 100 LFW faces (25x25 grayscale), upscaled 4x to 100x100
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from .sample import Dataset, Sample

REAL = "real"
SUBSETS = ("portraits", "scenes", "lfw")
BOX_SCALES = (0.85, 1.0, 1.25)  # each portrait's hand-drawn head box, shrunk and grown about its centre
LFW_UPSCALE = 4


@dataclass(frozen=True)
class Photo:
    """A photo inside an installed package: where, whose, under which terms, and its face."""

    name: str
    package: str  # the distribution that ships it
    path: str  # inside the distribution
    credit: str
    license: str
    face_box: tuple[int, int, int, int] | None = None  # left, top, right, bottom (portraits)


PHOTOS: tuple[Photo, ...] = (
    Photo(
        "astronaut",
        "scikit-image",
        "skimage/data/astronaut.png",
        "Eileen Collins, NASA (scikit-image data)",
        "public domain",
        (120, 0, 330, 210),
    ),
    Photo(
        "grace_hopper",
        "matplotlib",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "Grace Hopper, U.S. Navy (matplotlib sample data)",
        "public domain",
        (110, 30, 410, 330),
    ),
    Photo(
        "camera",
        "scikit-image",
        "skimage/data/camera.png",
        "'cameraman', Lav Varshney (scikit-image data)",
        "CC0",
        (140, 55, 280, 195),
    ),
    Photo("coffee", "scikit-image", "skimage/data/coffee.png", "Rachel Michetti (scikit-image data)", "CC0"),
    Photo("chelsea", "scikit-image", "skimage/data/chelsea.png", "Stefan van der Walt (scikit-image data)", "CC0"),
    Photo("rocket", "scikit-image", "skimage/data/rocket.jpg", "SpaceX (scikit-image data)", "public domain"),
    Photo(
        "hubble_deep_field",
        "scikit-image",
        "skimage/data/hubble_deep_field.jpg",
        "NASA, Hubble eXtreme Deep Field (scikit-image data)",
        "public domain",
    ),
    Photo(
        "motorcycle",
        "scikit-image",
        "skimage/data/motorcycle_left.png",
        "Middlebury stereo data set (scikit-image data)",
        "public domain (scikit-image's notes)",
    ),
    Photo(
        "coins",
        "scikit-image",
        "skimage/data/coins.png",
        "Greek coins, Brooklyn Museum (scikit-image data)",
        "no known copyright restrictions",
    ),
    Photo(
        "retina",
        "scikit-image",
        "skimage/data/retina.jpg",
        "Häggström, Mikael (scikit-image data)",
        "public domain dedication",
    ),
    Photo(
        "immunohistochemistry",
        "scikit-image",
        "skimage/data/ihc.png",
        "Immunohistochemical staining (scikit-image data)",
        "public domain",
    ),
    Photo("colorwheel", "scikit-image", "skimage/data/color.png", "a colour wheel (scikit-image data)", "CC0"),
)
LFW = Photo(
    "lfw",
    "scikit-image",
    "skimage/data/lfw_subset.npy",
    "Labeled Faces in the Wild subset (Huang et al. 2007; scikit-image data)",
    "research use (LFW)",
)


def locate(photo: Photo) -> Path:
    """The photo's file in its installed distribution; `InvalidInputError` when it is not installed."""
    try:
        dist = metadata.distribution(photo.package)
    except metadata.PackageNotFoundError:
        raise InvalidInputError(
            "data", f"{photo.name} ships with {photo.package}, which is not installed (pip install {photo.package})"
        ) from None
    path = Path(str(dist.locate_file(photo.path)))
    if not path.is_file():
        raise InvalidInputError("data", f"{photo.package} {dist.version} has no {photo.path}")
    return path


def _scaled(box: tuple[int, int, int, int], scale: float, height: int, width: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half_w, half_h = (right - left) * scale / 2, (bottom - top) * scale / 2
    return (
        max(0, round(cx - half_w)),
        max(0, round(cy - half_h)),
        min(width, round(cx + half_w)),
        min(height, round(cy + half_h)),
    )


class RealPhotos(Dataset):
    """Samples "<photo>@<scale>" (a portrait with its box scaled), "<photo>" (a whole scene) or
    "lfw-NNN" (an LFW face, the whole upscaled image)."""

    def __init__(self, subset: str | None):
        if subset is not None and subset not in SUBSETS:
            raise InvalidInputError("data", f"unknown real-photo subset {subset!r}; choose {', '.join(SUBSETS)}")
        ids: list[str] = []
        if subset in (None, "portraits"):
            ids += [f"{p.name}@{s:g}" for p in PHOTOS if p.face_box for s in BOX_SCALES]
        if subset in (None, "scenes"):
            ids += [p.name for p in PHOTOS if not p.face_box]
        if subset == "lfw":
            ids += [f"lfw-{i:03d}" for i in range(100)]
        spec = REAL if subset is None else f"{REAL}:{subset}"
        super().__init__("real", Path(spec), ids, "none", 0, None, Path("."), subset)
        self._lfw: np.ndarray | None = None

    def credits(self) -> list[Photo]:
        names = {i.split("@")[0] for i in self.ids if not i.startswith("lfw-")}
        return [p for p in PHOTOS if p.name in names] + ([LFW] if any(i.startswith("lfw-") for i in self.ids) else [])

    def load(self, sample_id: str) -> Sample:
        if sample_id.startswith("lfw-"):
            return self._load_lfw(sample_id)
        name, _, scale = sample_id.partition("@")
        photo = next((p for p in PHOTOS if p.name == name), None)
        if photo is None:
            raise InvalidInputError("data", f"no real photo named {name!r}")
        with Image.open(locate(photo)) as img:
            image = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
        box = None
        if photo.face_box is not None and scale:
            box = _scaled(photo.face_box, float(scale), image.shape[0], image.shape[1])
        return Sample(sample_id, image, None, box)

    def _load_lfw(self, sample_id: str) -> Sample:
        if self._lfw is None:
            self._lfw = np.load(locate(LFW))
        face = self._lfw[int(sample_id.split("-")[1])]  # (25, 25) in [0, 1]
        gray = Image.fromarray((face * 255).round().astype(np.uint8))
        side = face.shape[0] * LFW_UPSCALE
        image = np.asarray(gray.resize((side, side), Image.Resampling.BICUBIC).convert("RGB"), dtype=np.uint8).copy()
        return Sample(sample_id, image, None, None)


def open_real(spec: str) -> RealPhotos:
    subset = spec.partition(":")[2] or None
    return RealPhotos(subset)
