"""Honest images: EXIF orientation applied before anything else, ICC profiles converted to sRGB,
and nothing of the photo's metadata (never GPS) in the protected PNG unless EXIF is asked for."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from faceshield.engine.errors import InvalidInputError
from faceshield.engine.io.images import decode_image, encode_png
from faceshield.engine.io.metadata import kept_exif
from tests.photos import exif_block, photo, stored_as


def chunks(png: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        out.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return out


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(orientation):
    upright = Image.fromarray(np.arange(24 * 40 * 3, dtype=np.uint32).reshape(24, 40, 3).astype(np.uint8))
    stored = stored_as(upright, orientation)
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif_block(orientation))
    assert np.array_equal(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))), np.asarray(upright))
    assert np.array_equal(decode_image(buffer.getvalue()), np.asarray(upright))


def test_a_sideways_phone_jpeg_comes_out_upright_with_no_exif_and_no_gps():
    upright = photo("astronaut")[:, 64:448]  # portrait 512 x 384
    buffer = io.BytesIO()
    stored_as(Image.fromarray(upright), 6).save(buffer, format="JPEG", quality=95, exif=exif_block(6))
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).size == (512, 384)  # stored sideways
    decoded = decode_image(data)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright.astype(int)).mean() < 3  # JPEG loss only
    out = encode_png(decoded)
    assert set(chunks(out)) == {b"IHDR", b"IDAT", b"IEND"}  # no eXIf, iCCP, iTXt (XMP), tEXt
    with Image.open(io.BytesIO(out)) as img:
        assert not img.getexif() and not img.info
    # Asked to keep EXIF: camera and date stay; GPS, maker note, thumbnail and orientation never.
    kept = encode_png(decoded, exif=kept_exif(data, ("exif",)))
    assert b"eXIf" in chunks(kept) and b"serial 12345" not in kept
    with Image.open(io.BytesIO(kept)) as img:
        exif = img.getexif()
        assert exif[ExifTags.Base.Make] == "PhoneCo"
        assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2026:11:30 10:00:00"
        assert ExifTags.Base.Orientation not in exif
        assert ExifTags.IFD.GPSInfo not in exif and not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert kept_exif(data) is None
    with pytest.raises(InvalidInputError, match="keep"):
        kept_exif(data, ("xmp",))


def icc_profile(gamma: float, description: str) -> bytes:
    """A minimal ICC v2 RGB display profile: sRGB's primaries (D50), one gamma for all channels."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x, y, z) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = description.encode() + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + b"\0" * 4
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + table + body


def png_with_profile(pixels: np.ndarray, icc: bytes | None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **({"icc_profile": icc} if icc else {}))
    return buffer.getvalue()


def test_a_colour_profile_is_converted_to_srgb_not_dropped():
    grey = np.full((32, 32, 3), 128, np.uint8)
    linear = decode_image(png_with_profile(grey, icc_profile(1.0, "Linear RGB")))
    assert 180 <= linear.mean() <= 195  # linear 0.5 is sRGB 0.735 (188); dropped, it would stay 128
    assert np.ptp(linear) <= 1
    assert np.array_equal(decode_image(png_with_profile(grey, icc_profile(2.2, "sRGB IEC61966-2.1"))), grey)
    assert np.array_equal(decode_image(png_with_profile(grey, None)), grey)


def test_an_unreadable_colour_profile_is_refused_with_a_reason():
    with pytest.raises(InvalidInputError, match="ICC colour profile cannot be read"):
        decode_image(png_with_profile(np.zeros((32, 32, 3), np.uint8), b"not a profile" * 20))
