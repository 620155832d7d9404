"""Bad input gets a typed error that names the field and says what to fix."""

import io
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from faceshield.engine import AttackConfig
from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import (
    decode_image,
    decode_raw_rgb,
    encode_png,
    quantize,
    to_tensor,
)
from tests.helpers import png_from_samples


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_round_trip_png_is_lossless():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_png(rgb)), rgb)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "no image bytes"),
        (b"hello, this is text", "not a PNG or JPEG"),
        (_bomb_png(100_000, 100_000), "limit"),
        (_bomb_png(20_000, 5_000), "above the limit"),
        (_bomb_png(0, 10), "at least 16|not a PNG|unreadable"),
        (_bomb_png(8, 8), "at least 16"),
    ],
)
def test_unusable_bytes_are_refused_before_decoding(data, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        decode_image(data, max_pixels=40_000_000)
    assert err.value.field == "image"


def test_truncated_file_is_refused():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _png(rgb)
    with pytest.raises(InvalidInputError, match="truncated|corrupt|unreadable"):
        decode_image(data[: len(data) // 2])
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    with pytest.raises(InvalidInputError):
        decode_image(buf.getvalue()[:300])


def test_other_formats_are_refused():
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="BMP")
    with pytest.raises(InvalidInputError, match="BMP"):
        decode_image(buf.getvalue())


def test_grayscale_palette_and_cmyk_are_converted():
    gray = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    out = decode_image(_png(gray, "L"))
    assert out.shape == (32, 32, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    pal = Image.fromarray(np.zeros((32, 32, 3), np.uint8)).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert decode_image(buf.getvalue()).shape == (32, 32, 3)
    buf = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(buf, format="JPEG")
    red = decode_image(buf.getvalue())
    assert red.shape == (32, 32, 3) and red[..., 0].mean() > 200 and red[..., 1].mean() < 60


def test_alpha_is_dropped_only_when_opaque():
    rgba = np.full((32, 32, 4), 200, np.uint8)
    rgba[..., 3] = 255
    assert decode_image(_png(rgba, "RGBA")).shape == (32, 32, 3)
    rgba[0, 0, 3] = 10
    with pytest.raises(InvalidInputError, match="transparent"):
        decode_image(_png(rgba, "RGBA"))


SIXTEEN_BIT_COLOUR_TYPES = [(0, "grey", 1), (2, "RGB", 3), (4, "grey+alpha", 2), (6, "RGBA", 4)]


@pytest.mark.parametrize(("colour_type", "name", "channels"), SIXTEEN_BIT_COLOUR_TYPES)
def test_every_sixteen_bit_png_is_refused_and_its_eight_bit_twin_decodes(colour_type, name, channels):
    """16-bit RGB, RGBA and grey+alpha used to be cut to their high byte without a word."""
    shape = (32, 32, channels) if channels > 1 else (32, 32)
    samples = np.full(shape, 40000, np.uint16)  # fully opaque where there is alpha
    if channels in (2, 4):
        samples[..., -1] = 65535
    with pytest.raises(InvalidInputError, match=re.escape(f"16-bit PNGs ({name})")) as err:
        decode_image(png_from_samples(samples, 16, colour_type))
    assert err.value.field == "image"
    eight = np.full(shape, 156, np.uint8)
    if channels in (2, 4):
        eight[..., -1] = 255
    assert np.array_equal(decode_image(png_from_samples(eight, 8, colour_type)), np.full((32, 32, 3), 156, np.uint8))


def _truncated_png(width: int, height: int) -> bytes:
    """A PNG header for width x height grey pixels, followed by only a few rows of data."""
    raw = b"".join(b"\x00" + bytes(width) for _ in range(4))
    return _bomb_png(width, height)[:33] + _chunk(b"IDAT", zlib.compress(raw))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.mark.parametrize(("megapixels", "max_pixels"), [(95, 120_000_000), (200, 250_000_000)])
def test_only_the_configured_max_pixels_limits_size(megapixels, max_pixels):
    """Pillow's own bomb guard (89.5 MP warning, 179 MP error) must not stand in for max_pixels:
    a header under the configured limit gets as far as decoding (here: truncated data)."""
    data = _truncated_png(10_000, megapixels * 100)
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        decode_image(data, max_pixels=max_pixels)
    just_below = megapixels * 1_000_000 - 1
    with pytest.raises(InvalidInputError, match=f"above the limit of {just_below}$"):
        decode_image(data, max_pixels=just_below)


def test_raw_rgb_needs_matching_length_and_sane_shape():
    assert decode_raw_rgb(bytes(16 * 20 * 3), 16, 20).shape == (16, 20, 3)
    with pytest.raises(InvalidInputError, match="needs 960 bytes"):
        decode_raw_rgb(bytes(10), 16, 20)
    with pytest.raises(InvalidInputError):
        decode_raw_rgb(b"", 0, 0)
    with pytest.raises(InvalidInputError, match="above the limit"):
        decode_raw_rgb(b"", 100_000, 100_000)


def test_quantize_never_leaves_the_epsilon_ball():
    rng = np.random.default_rng(2)
    orig = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    x = to_tensor(orig) + torch.from_numpy(rng.uniform(-0.05, 0.05, (3, 24, 24)).astype(np.float32))
    q = quantize(x, orig, 0.05)
    diff = np.abs(q.astype(int) - orig.astype(int)) / 127.5
    assert diff.max() <= 0.05 and diff.max() > 0.04


@pytest.mark.parametrize(
    "field, value",
    [
        ("epsilon", 0.0),
        ("epsilon", -0.1),
        ("epsilon", 1.5),
        ("epsilon", float("nan")),
        ("steps", 0),
        ("steps", 10_000),
        ("steps", 2.5),
        ("step_size", float("inf")),
        ("seed", -1),
        ("blur_kernel", 4),
        ("gamma", float("nan")),
    ],
)
def test_bad_parameters_name_their_field(field, value):
    with pytest.raises(InvalidInputError) as err:
        AttackConfig.for_method("union-saliency", **{field: value})
    assert err.value.field == field


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(InvalidInputError, match="union-saliency") as err:
        AttackConfig.for_method("deepfool")
    assert err.value.field == "method"
