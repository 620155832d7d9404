"""One evaluation image (`Sample`) and an ordered data set of them (`Dataset`); the data sets
themselves are in `datasets.py` (CelebA, folders, synthetic faces) and `real_photos.py`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..io.images import DEFAULT_MAX_PIXELS, decode_image

STARGAN_CROP = 178  # the official loader's centre crop


@dataclass(frozen=True)
class Sample:
    """One evaluation image: (H, W, 3) uint8 RGB, its original attributes where known, and its
    face box where the data set has one (else the engine's centre square)."""

    id: str
    image: np.ndarray
    attributes: tuple[float, ...] | None
    face_box: tuple[int, int, int, int] | None = None


class Dataset:
    """An ordered list of sample ids and a way to load each one."""

    def __init__(
        self,
        kind: str,
        root: Path,
        ids: list[str],
        crop: str,
        resolution: int,
        attributes: dict[str, tuple[float, ...]] | None,
        image_dir: Path,
        split: str | None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.kind = kind
        self.root = root
        self.ids = ids
        self.crop = crop
        self.resolution = resolution
        self.attributes = attributes
        self.image_dir = image_dir
        self.split = split
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self) -> dict:
        """What identifies the data for a resumed run (a different one must not mix in)."""
        digest = hashlib.sha256("\n".join(self.ids).encode()).hexdigest()[:16]
        return {
            "kind": self.kind,
            "root": str(self.root),
            "split": self.split,
            "crop": self.crop,
            "resolution": self.resolution,
            "size": len(self.ids),
            "ids_sha256": digest,
        }

    def load(self, sample_id: str) -> Sample:
        path = self.image_dir / sample_id
        if not path.is_file():
            raise InvalidInputError("data", f"{path} is listed in the data set but does not exist")
        image = decode_image(path.read_bytes(), max_pixels=self.max_pixels, field=f"data ({sample_id})")
        image = crop_image(image, self.crop, self.resolution)
        attrs = None if self.attributes is None else self.attributes[sample_id]
        return Sample(sample_id, image, attrs)


def crop_image(image: np.ndarray, crop: str, resolution: int) -> np.ndarray:
    if crop == "none":
        return image
    h, w = image.shape[:2]
    side = min(h, w) if crop == "square" else min(STARGAN_CROP, h, w)
    # torchvision's CenterCrop: top = round((h - side) / 2), left likewise.
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    img = Image.fromarray(image).crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8).copy()


class SampleCache:
    """Loads each sample once (an evaluation chunk reads its images for several rows)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.samples: dict[str, Sample] = {}

    def __call__(self, sample_id: str) -> Sample:
        if sample_id not in self.samples:
            self.samples[sample_id] = self.dataset.load(sample_id)
        return self.samples[sample_id]
