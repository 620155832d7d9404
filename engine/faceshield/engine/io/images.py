"""Decoding caller images safely, and encoding protected ones losslessly.

Pillow does the codec work. Sizes are checked from the header before any pixel is decoded, so a
small file that claims a huge canvas (a decompression bomb) is refused cheaply. Images are never
logged or written anywhere by this module.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidInputError

DEFAULT_MAX_PIXELS = 40_000_000  # ~ 7300 x 5500; a phone photo is 12-50 MP at most
MIN_SIDE = 16
_SUPPORTED = {"PNG", "JPEG"}


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image") -> np.ndarray:
    """PNG or JPEG bytes -> (H, W, 3) uint8 RGB.

    Grayscale and palette images are converted to RGB; CMYK JPEGs too; an alpha channel is
    dropped only where it is fully opaque. 16-bit images are refused (convert them to 8-bit
    first): a silent conversion would change the pixels the caller wants protected.
    """
    if not data:
        raise InvalidInputError(field, "no image bytes were sent")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidInputError(field, "not a PNG or JPEG image (the bytes could not be identified)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInputError(field, f"image dimensions are above the limit of {max_pixels} pixels") from None
    except Exception as exc:
        raise InvalidInputError(field, f"unreadable image ({exc.__class__.__name__})") from None
    if img.format not in _SUPPORTED:
        raise InvalidInputError(field, f"{img.format} images are not accepted; send PNG or JPEG")
    width, height = img.size
    check_dimensions(height, width, max_pixels, field)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F") or "16" in img.mode:
        raise InvalidInputError(
            field,
            f"{img.mode} ({'16-bit' if '16' in img.mode else 'high bit depth'}) images are not supported; convert to 8-bit RGB",
        )
    try:
        img.load()
    except Exception as exc:  # truncated file, corrupt stream
        raise InvalidInputError(field, f"the image data is truncated or corrupt ({exc.__class__.__name__})") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        if (rgba[..., 3] != 255).any():
            raise InvalidInputError(field, "the image has transparent pixels; flatten it onto a background first")
        return np.ascontiguousarray(rgba[..., :3])
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, P, CMYK, YCbCr
    return np.asarray(img, dtype=np.uint8).copy()


def decode_raw_rgb(
    data: bytes, height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image"
) -> np.ndarray:
    """Packed RGB8 bytes with their shape -> (H, W, 3) uint8."""
    check_dimensions(height, width, max_pixels, field)
    if len(data) != height * width * 3:
        raise InvalidInputError(
            field, f"raw RGB8 of {width}x{height} needs {height * width * 3} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()


def check_dimensions(height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image") -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise InvalidInputError(field, f"image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels")
    if height * width > max_pixels:
        raise InvalidInputError(
            field, f"image is {width}x{height} = {height * width} pixels, above the limit of {max_pixels}"
        )


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> lossless PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in generator space [-1, 1]."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def quantize(protected: torch.Tensor, original: np.ndarray, epsilon: float) -> np.ndarray:
    """(3, H, W) float result -> (H, W, 3) uint8, keeping |x - I| <= epsilon after rounding
    (`quantize_tensor`, on the original's own levels)."""
    orig = torch.from_numpy(original).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
    out = quantize_tensor(protected.detach().cpu().float()[None], orig[None], epsilon)[0]
    return ((out + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def quantize_tensor(protected: torch.Tensor, original: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The 8-bit image a caller receives, as floats in [-1, 1]: (N, 3, H, W), any device.

    `original` came from 8-bit levels. Rounding to the nearest level could overshoot the bound by
    half a level, so the offset from the original is rounded and then clipped to the whole levels
    that fit inside epsilon. The attack's in-loop verdict measures exactly what `quantize` returns.
    """
    orig = ((original + 1) * 127.5).round()
    bound = float(np.floor(epsilon * 127.5 + 1e-9))
    levels = ((protected + 1) * 127.5 - orig).round().clamp(-bound, bound)
    return (orig + levels).clamp(0, 255) / 127.5 - 1
