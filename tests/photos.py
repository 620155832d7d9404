"""Real photos for tests, read from installed packages (no download), and a group photo built
from them: faces pasted into a larger scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

SITE = Path(np.__file__).resolve().parents[1]
PHOTOS = {
    "astronaut": SITE / "skimage" / "data" / "astronaut.png",
    "camera": SITE / "skimage" / "data" / "camera.png",
    "grace_hopper": SITE / "matplotlib" / "mpl-data" / "sample_data" / "grace_hopper.jpg",
}
# Hand-drawn tight face boxes (left, top, right, bottom), for overlap checks.
FACES = {"astronaut": (165, 60, 275, 180), "camera": (170, 85, 265, 195), "grace_hopper": (175, 115, 375, 335)}
# Head regions cut out of the photos to paste into a scene (left, top, right, bottom).
HEADS = {"astronaut": (140, 20, 300, 200), "grace_hopper": (130, 60, 420, 380)}


def photo(name: str) -> np.ndarray:
    with Image.open(PHOTOS[name]) as img:
        return np.asarray(img.convert("RGB")).copy()


def group_photo(seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A 720 x 400 scene (smooth gradient and mild noise) with three faces pasted into it: the
    astronaut, Grace Hopper, and the astronaut again mirrored. Returns the image and where each
    face's pasted region lies."""
    rng = np.random.default_rng(seed)
    h, w = 400, 720
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 - 50 * xx / w], axis=-1)
    scene = np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    pieces = [
        (photo("astronaut"), HEADS["astronaut"], 150, False),
        (photo("grace_hopper"), HEADS["grace_hopper"], 170, False),
        (photo("astronaut"), HEADS["astronaut"], 150, True),
    ]
    regions, x = [], 30
    for image, (left, top, right, bottom), side, mirror in pieces:
        crop = Image.fromarray(image[top:bottom, left:right]).resize(
            (side, round(side * (bottom - top) / (right - left)))
        )
        if mirror:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        y = 60 + (len(regions) * 70) % 140
        scene[y : y + crop.height, x : x + crop.width] = np.asarray(crop)
        regions.append((x, y, x + crop.width, y + crop.height))
        x += crop.width + 60
    return scene, regions


def overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return 0.0 if w <= 0 or h <= 0 else w * h / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0)}


def exif_block(orientation: int | None = None, gps: bool = True, maker_note: bool = True) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Model] = "P1"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.IFD.GPSInfo] = dict(GPS)
    sub = {ExifTags.Base.DateTimeOriginal: "2026:11:30 10:00:00"}
    if maker_note:
        sub[ExifTags.Base.MakerNote] = b"serial 12345 at home"
    exif[ExifTags.IFD.Exif] = sub
    return exif


def stored_as(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores for an upright scene under this EXIF orientation (the inverse
    of the transform a viewer applies)."""
    inverse = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }
    out = upright
    for t in inverse.get(orientation, []):
        out = out.transpose(t)
    return out
