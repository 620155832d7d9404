"""Real processing a photo meets after it is protected: re-encoding, rescaling, blur.

Each transform maps an (H, W, 3) uint8 image to another of the same size, with Pillow (libjpeg
for JPEG), as an upload pipeline would. The attack's verdict can be asked to hold after them
(`Policy.verify_after`) and the evaluation measures every method under them.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Transform = Callable[[np.ndarray], np.ndarray]


def jpeg(quality: int) -> Transform:
    """Re-encode as baseline JPEG at `quality` (Pillow/libjpeg defaults: 4:2:0 chroma)."""

    def apply(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()

    return apply


def downscale(factor: int = 2) -> Transform:
    """Shrink by `factor` (Lanczos, antialiased, as photo sites do) and enlarge back (bicubic)."""

    def apply(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        small = Image.fromarray(image).resize((max(1, w // factor), max(1, h // factor)), Image.Resampling.LANCZOS)
        return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8).copy()

    return apply


def gaussian_blur(sigma: float = 1.0) -> Transform:
    """Pillow's Gaussian blur with standard deviation `sigma` pixels."""

    def apply(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma)), dtype=np.uint8).copy()

    return apply


TRANSFORMS: dict[str, Transform] = {
    "jpeg95": jpeg(95),
    "jpeg85": jpeg(85),
    "jpeg75": jpeg(75),
    "downscale2": downscale(2),
    "blur1": gaussian_blur(1.0),
}
TRANSFORM_LABELS = {
    "jpeg95": "JPEG q95",
    "jpeg85": "JPEG q85",
    "jpeg75": "JPEG q75",
    "downscale2": "downscale x2 and back",
    "blur1": "Gaussian blur sigma 1",
}


def processing(name: str) -> Transform:
    """A processing by name: the named ones above, "jpegQ" for any quality Q in 1-100, and
    "downscaleF" for an integer factor F in 2-8. `InvalidInputError` (field "verify_after") says
    what a name needs."""
    from ..errors import InvalidInputError

    if name in TRANSFORMS:
        return TRANSFORMS[name]
    for prefix, low, high, make in (("jpeg", 1, 100, jpeg), ("downscale", 2, 8, downscale)):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            value = int(name[len(prefix) :])
            if not low <= value <= high:
                what = "JPEG quality" if prefix == "jpeg" else "downscale factor"
                raise InvalidInputError("verify_after", f"{name}: the {what} must lie in {low}-{high}, got {value}")
            return make(value)
    raise InvalidInputError(
        "verify_after", f"unknown processing {name!r}; use jpeg1..jpeg100, downscale2..downscale8 or blur1"
    )
