"""Image and mask inputs -> messages, checked before anything is sent.

Accepted images: a file path (PNG or JPEG), PNG/JPEG bytes, a numpy array (H, W, 3) or (H, W)
of uint8, or a PIL image (Pillow is optional: it is imported only when given one).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceshield.v1 import faceshield_pb2 as pb

from .errors import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ImageInput = Any  # str | os.PathLike | bytes | np.ndarray | PIL.Image.Image


def _is_pil(obj: object) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "save") and hasattr(obj, "mode")


def _read(path: str | os.PathLike[str], field: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise InputError(field, f"{p} does not exist or is not a file")
    return p.read_bytes()


def _encoded(data: bytes, field: str) -> bytes:
    if not data:
        raise InputError(field, "the image is empty")
    if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
        raise InputError(field, "bytes are neither PNG nor JPEG; pass a numpy array for raw pixels")
    return data


def to_image(image: ImageInput, field: str = "image") -> pb.Image:
    """Any accepted image input -> `faceshield.v1.Image`."""
    if isinstance(image, pb.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return pb.Image(encoded=_encoded(_read(image, field), field))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return pb.Image(encoded=_encoded(bytes(image), field))
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise InputError(field, f"arrays must be uint8 (0..255), got {array.dtype}; scale and convert first")
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        if array.ndim != 3 or array.shape[2] != 3:
            raise InputError(field, f"arrays must be (H, W, 3) RGB or (H, W) gray, got shape {image.shape}")
        h, w = array.shape[:2]
        return pb.Image(raw=pb.RawImage(data=np.ascontiguousarray(array).tobytes(), width=w, height=h))
    if _is_pil(image):
        if image.mode in ("RGB", "L"):
            return to_image(np.asarray(image), field)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")  # lossless; the server judges alpha and bit depth
        return pb.Image(encoded=buffer.getvalue())
    raise InputError(
        field,
        f"unsupported image type {type(image).__name__}: pass a path, PNG/JPEG bytes, a numpy array or a PIL image",
    )


def to_mask(mask: ImageInput, field: str = "saliency_mask") -> pb.Mask:
    """A saliency mask: float array (H, W) in [0, 1], uint8 array (H, W) (v / 255), or a grayscale PNG."""
    if isinstance(mask, pb.Mask):
        return mask
    if isinstance(mask, (str, os.PathLike)):
        return pb.Mask(png=_read(mask, field))
    if isinstance(mask, (bytes, bytearray, memoryview)):
        if not bytes(mask).startswith(PNG_MAGIC):
            raise InputError(field, "byte masks must be grayscale PNG; pass a float array for raw values")
        return pb.Mask(png=bytes(mask))
    if _is_pil(mask):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        if mask.ndim == 3 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.ndim != 2:
            raise InputError(field, f"masks must be (H, W), got shape {mask.shape}")
        values = mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask.astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise InputError(field, "mask values must be finite and lie in [0, 1]")
        return pb.Mask(float32=values.astype("<f4").tobytes())
    raise InputError(field, f"unsupported mask type {type(mask).__name__}")


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, 3) uint8 (needs Pillow: pip install 'faceshield-client[pil]')."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("decoding images needs Pillow: pip install 'faceshield-client[pil]'") from None
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB")).copy()
