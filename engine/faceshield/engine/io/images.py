"""Decoding caller images safely, and encoding protected ones losslessly.

Pillow does the codec work. Sizes are checked from the header before any pixel is decoded, so a
small file that claims a huge canvas (a decompression bomb) is refused cheaply, against the
caller's `max_pixels` alone (Pillow's own fixed guard is bypassed, see `_open`). Images are
never logged or written anywhere by this module.

Bit depth: 8 bits per channel only. Every 16-bit PNG (grey, grey+alpha, RGB, RGBA) is refused
with a message saying so: Pillow would silently keep only the high byte of RGB and alpha ones,
and the protection bound is defined on the 8-bit pixels the caller gets back.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

from ..errors import InvalidInputError
from .metadata import normalized

DEFAULT_MAX_PIXELS = 40_000_000  # ~ 7300 x 5500; a phone photo is 12-50 MP at most
MIN_SIDE = 16
_SUPPORTED = {"PNG", "JPEG"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_PNG_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
_EIGHT_BIT_MODES = {"1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr"}


def _open(data: bytes, field: str) -> ImageFile.ImageFile:
    """Pillow's PNG or JPEG reader on `data`: header parsed, no pixel decoded yet.

    The readers are called directly, not through `Image.open`, because `Image.open` applies
    Pillow's process-wide decompression-bomb guard (a warning above ~89.5 MP, an error above
    ~179 MP), which would refuse images the configured `max_pixels` allows and report them as
    above *that* limit. `check_dimensions` is the one size limit.
    """
    reader: Callable[[IO[bytes]], ImageFile.ImageFile]
    if data.startswith(_PNG_SIGNATURE):
        reader = PngImagePlugin.PngImageFile
    elif data.startswith(_JPEG_SIGNATURE):
        reader = JpegImagePlugin.jpeg_factory
    else:
        raise InvalidInputError(field, _other_format(data))
    try:
        return reader(io.BytesIO(data))
    except Exception as exc:  # a broken header: SyntaxError, struct.error, OSError, ...
        raise InvalidInputError(field, f"unreadable image ({exc.__class__.__name__})") from None


def _other_format(data: bytes) -> str:
    """Why bytes that are neither PNG nor JPEG are refused, naming their format when Pillow knows it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return f"{img.format} images are not accepted; send PNG or JPEG"
    except Exception:  # unidentified, or a known format with a broken or huge header
        return "not a PNG or JPEG image (the bytes could not be identified)"


def _sixteen_bit(img: ImageFile.ImageFile, data: bytes) -> str | None:
    """The PNG colour type ("RGB", "grey+alpha", ...) when `img` stores 16 bits per sample, else
    None. Read from the raw mode Pillow would decode with ("RGB;16B", "I;16B", ...)."""
    if img.format != "PNG" or not any("16" in str(tile.args) for tile in img.tile):
        return None
    colour = data[25] if data[12:16] == b"IHDR" else -1
    return _PNG_COLOUR_TYPES.get(colour, "unknown colour type")


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image") -> np.ndarray:
    """PNG or JPEG bytes -> (H, W, 3) uint8 RGB.

    Turned upright by the EXIF orientation and converted to sRGB by an embedded ICC profile
    first (`metadata.normalized`). Grayscale and palette images are converted to RGB; CMYK JPEGs
    too; an alpha channel is dropped only where it is fully opaque. 16-bit PNGs of every colour type are refused
    (convert them to 8-bit first): a silent conversion would change the pixels the caller wants
    protected.
    """
    if not data:
        raise InvalidInputError(field, "no image bytes were sent")
    opened = _open(data, field)
    if opened.format not in _SUPPORTED:
        raise InvalidInputError(field, f"{opened.format} images are not accepted; send PNG or JPEG")
    width, height = opened.size
    check_dimensions(height, width, max_pixels, field)
    colour = _sixteen_bit(opened, data)
    if colour is not None:
        raise InvalidInputError(
            field, f"16-bit PNGs ({colour}) are not accepted; convert the image to 8-bit per channel first"
        )
    if opened.mode not in _EIGHT_BIT_MODES:
        raise InvalidInputError(field, f"{opened.mode} images are not supported; convert to 8-bit RGB")
    try:
        opened.load()
    except Exception as exc:  # truncated file, corrupt stream
        raise InvalidInputError(field, f"the image data is truncated or corrupt ({exc.__class__.__name__})") from None
    img = normalized(opened, field)  # EXIF orientation applied, ICC profile converted to sRGB (io/metadata.py)
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


def encode_png(rgb: np.ndarray, exif: bytes | None = None) -> bytes:
    """(H, W, 3) uint8 -> lossless PNG bytes with no metadata chunk (no EXIF, XMP, ICC or text),
    or with the one `exif` block the caller chose to keep (`metadata.kept_exif`)."""
    buffer = io.BytesIO()
    extra = {"exif": exif} if exif else {}
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", compress_level=1, **extra)
    return buffer.getvalue()


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in generator space [-1, 1]."""
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def quantize(protected: torch.Tensor, original: np.ndarray, epsilon: float) -> np.ndarray:
    """(3, H, W) float result -> (H, W, 3) uint8, keeping |x - I| <= epsilon after rounding
    (`quantize_tensor`, on the original's own levels)."""
    out = quantize_tensor(protected.detach().cpu().float()[None], to_tensor(original)[None], epsilon)[0]
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
