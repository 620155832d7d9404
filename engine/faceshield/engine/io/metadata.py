"""What a photo's metadata changes about its pixels, and what of it may leave with the result.

Applied to every decoded image (`images.decode_image`), before anything else sees the pixels:

- **Orientation**: a phone stores a portrait photo sideways with an EXIF Orientation tag
  (values 2-8: mirrored, rotated 90/180/270). The pixels are turned upright first, so the face
  detector, the face boxes and the protected result all see the photo as a person does.
- **Colour**: an embedded ICC profile (Display P3 on recent phones, Adobe RGB from cameras, a
  CMYK press profile) is converted to sRGB with LittleCMS (Pillow's ImageCms, perceptual
  intent), not dropped: dropping it would shift every colour. A profile that describes itself
  as sRGB is taken as is. A profile that cannot be read, or does not fit the pixels, is refused
  with a message saying so rather than guessed around.

What leaves: the protected PNG (`images.encode_png`) carries no metadata at all, so no EXIF,
XMP, ICC, text chunk or GPS position, unless the caller asks to keep EXIF (`kept_exif`): then
the EXIF tags are kept except the GPS block, the maker note (vendors hide serial numbers and
locations in it), the embedded thumbnail (a picture of the unprotected face) and the
Orientation (the pixels are upright now). XMP is never kept (it can repeat the GPS position).
"""

from __future__ import annotations

import io

from PIL import Image, ImageCms, ImageOps

from ..errors import InvalidInputError

ORIENTATION = 0x0112
GPS_IFD = 0x8825
EXIF_IFD = 0x8769
MAKER_NOTE = 0x927C
THUMBNAIL_TAGS = (0x0201, 0x0202)  # JPEGInterchangeFormat(Length): the thumbnail's bytes
KEEPABLE = ("exif",)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def normalized(img: Image.Image, field: str = "image") -> Image.Image:
    """A loaded image turned upright by its EXIF orientation and converted to sRGB by its ICC profile."""
    icc = img.info.get("icc_profile")
    img = upright(img)
    if icc:
        img = to_srgb(img, icc, field)
    return img


def upright(img: Image.Image) -> Image.Image:
    try:
        orientation = int(img.getexif().get(ORIENTATION, 1))
    except (TypeError, ValueError, SyntaxError, OSError):  # a damaged EXIF block: no orientation
        return img
    if orientation not in range(2, 9):
        return img
    return ImageOps.exif_transpose(img)


def is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    return ImageCms.getProfileDescription(profile).strip().lower().startswith("srgb")


def to_srgb(img: Image.Image, icc: bytes, field: str = "image") -> Image.Image:
    """`img` (any 8-bit mode) with pixels in the sRGB space, as RGB (RGBA where it has alpha)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        raise InvalidInputError(
            field, "its embedded ICC colour profile cannot be read; convert the image to sRGB first"
        ) from None
    if is_srgb(source):
        return img
    if img.mode in ("P", "PA", "LA"):
        img = img.convert("RGBA")
    out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        converted = ImageCms.profileToProfile(img, source, _SRGB, outputMode=out_mode)
    except (ImageCms.PyCMSError, ValueError, OSError):
        raise InvalidInputError(
            field, f"its ICC colour profile does not fit its {img.mode} pixels; convert the image to sRGB first"
        ) from None
    assert converted is not None  # None only in place (inPlace=True)
    return converted


def kept_exif(data: bytes, keep: tuple[str, ...] | list[str] = ()) -> bytes | None:
    """The EXIF block to write into the protected PNG when `keep` asks for "exif": every tag but
    GPS, maker note, thumbnail and orientation; None when nothing is asked for or there is none."""
    unknown = sorted(set(keep) - set(KEEPABLE))
    if unknown:
        raise InvalidInputError("keep_metadata", f"can keep {', '.join(KEEPABLE)} only, not {', '.join(unknown)}")
    if "exif" not in keep:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            exif = img.getexif()
            exif.get_ifd(EXIF_IFD)  # load the nested block so that it is written back
    except Exception:  # unreadable: nothing to keep
        return None
    for tag in (ORIENTATION, GPS_IFD, *THUMBNAIL_TAGS):
        exif.pop(tag, None)
    sub = exif.get_ifd(EXIF_IFD)
    sub.pop(MAKER_NOTE, None)
    if not len(exif) and not sub:
        return None
    return exif.tobytes()
