"""Seeded fuzzing of every request field and image kind over a real channel.

Each case is one valid request with one field made invalid at random (a value drawn from that
field's invalid domain: out of range, wrong size, absurdly long, an image of a refused kind), or
bytes that are no protobuf at all. Whatever the draw, the answer must be typed: INVALID_ARGUMENT
with a BadRequest naming that field and an ErrorInfo, in trailers small enough for any client,
in unary calls and as per-item errors in a stream. Never UNKNOWN, INTERNAL or RESOURCE_EXHAUSTED.
(The images are noise with no face and leave `detect_faces` unset, which the server refuses; but
every field is checked before the face detector runs, so the violation names the fuzzed field.)
"""

from __future__ import annotations

import collections
import io
import math
import struct
import zlib

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from PIL import Image

from faceshield.engine.config import METHODS
from faceshield.v1 import faceshield_pb2 as pb
from tests.helpers import ATTRS, png_from_samples
from tests.service.servers import ServerThread, png_bytes, random_image, test_settings
from tests.service.test_service_hardening import details

SEED = 20261201
CASES = 300
MAX_PIXELS = 64 * 64
MAX_STEPS = 20
SIDE = 32
MAX_TRAILER_BYTES = 4096
PROTECT, EVALUATE = "ProtectImage", "Evaluate"


@pytest.fixture(scope="module")
def server():
    with ServerThread(test_settings(max_pixels=MAX_PIXELS, max_steps=MAX_STEPS, metrics_port=-1)) as s:
        yield s


# -- invalid values, one generator per field ---------------------------------------------------
def text(rng, low: int, high: int) -> str:
    """Random text: letters, digits, control characters, accents, symbols, emoji."""
    alphabet = list("abcXYZ019_-. ") + ["\n", "\r", "\t", "\x00", "\x1b", "é", "€", "中", "\U0001f600"]
    return "".join(rng.choice(alphabet, int(rng.integers(low, high + 1))))


def bad_float(rng, high: float) -> float:
    return float(
        rng.choice([0.0, -rng.uniform(1e-9, 1e9), high + rng.uniform(1e-6, 1e6), math.nan, math.inf, -math.inf])
    )


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def bomb_header(width: int, height: int) -> bytes:
    """A PNG header claiming width x height, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def raw(image: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(data=image.tobytes(), width=image.shape[1], height=image.shape[0]))


def bad_image(rng, may_be_missing: bool = True) -> pb.Image | None:
    """An image of a kind the server refuses (None: no image at all)."""
    pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    kind = int(rng.integers(0 if may_be_missing else 1, 13))
    if kind == 0:
        return None
    if kind == 1:
        return pb.Image(encoded=b"")
    if kind == 2:  # garbage
        return pb.Image(encoded=rng.bytes(int(rng.integers(1, 3000))))
    if kind == 3:  # truncated PNG (cut inside its header or pixel data)
        data = png_bytes(pixels)
        return pb.Image(encoded=data[: int(rng.integers(1, int(len(data) * 0.9)))])
    if kind == 4:  # truncated JPEG
        data = encoded(Image.fromarray(pixels), "JPEG", quality=90)
        return pb.Image(encoded=data[: int(rng.integers(1, len(data) // 2))])
    if kind == 5:  # another format
        return pb.Image(encoded=encoded(Image.fromarray(pixels), str(rng.choice(["GIF", "BMP", "TIFF", "PPM"]))))
    if kind == 6:  # 16-bit PNG, any colour type, opaque
        colour_type, channels = [(0, 1), (2, 3), (4, 2), (6, 4)][int(rng.integers(0, 4))]
        samples = rng.integers(0, 65536, (SIDE, SIDE, channels))
        if channels in (2, 4):
            samples[..., -1] = 65535
        return pb.Image(encoded=png_from_samples(samples if channels > 1 else samples[..., 0], 16, colour_type))
    if kind == 7:  # 8-bit with a transparent pixel (RGBA or grey+alpha)
        channels, colour_type = (4, 6) if rng.integers(0, 2) else (2, 4)
        samples = rng.integers(0, 256, (SIDE, SIDE, channels))
        samples[..., -1] = 255
        samples[rng.integers(0, SIDE), rng.integers(0, SIDE), -1] = rng.integers(0, 255)
        return pb.Image(encoded=png_from_samples(samples, 8, colour_type))
    if kind == 8:  # a side under 16 pixels
        h, w = int(rng.integers(1, 16)), int(rng.integers(1, 200))
        return raw(rng.integers(0, 256, (h, w, 3) if rng.integers(0, 2) else (w, h, 3), dtype=np.uint8))
    if kind == 9:  # a header above max_pixels
        w = int(rng.integers(65, 2**31 - 1))
        return pb.Image(encoded=bomb_header(w, int(rng.integers(MAX_PIXELS // w + 65, 2**31 - 1))))
    if kind == 10:  # raw bytes that do not match the shape
        n = int(rng.integers(0, 5000))
        n += n == SIDE * SIDE * 3
        return pb.Image(raw=pb.RawImage(data=rng.bytes(n), width=SIDE, height=SIDE))
    if kind == 11:  # raw with a zero or negative side
        return pb.Image(raw=pb.RawImage(data=b"", width=int(rng.integers(-(2**31), 1)), height=SIDE))
    return pb.Image(raw=pb.RawImage(data=b"", width=int(rng.integers(200, 2**31 - 1)), height=200))


def bad_targets(rng) -> list[str]:
    kind = int(rng.integers(0, 4))
    if kind == 0:  # unknown name (never one of the attributes)
        return ["Male", "~" + text(rng, 1, 8)]
    if kind == 1:  # a duplicate
        name = str(rng.choice(ATTRS))
        return [name, name]
    if kind == 2:  # more targets than attributes
        return [text(rng, 1, 20) for _ in range(int(rng.integers(len(ATTRS) + 1, 10_000)))]
    return ["~" + text(rng, 12, 20_000)]  # longer than any attribute name


def bad_attributes(rng) -> list[float]:
    if rng.integers(0, 2):  # a wrong count
        n = int(rng.choice([rng.integers(1, len(ATTRS)), rng.integers(len(ATTRS) + 1, 20_000)]))
        return [float(v) for v in rng.integers(0, 2, n)]
    values = [float(v) for v in rng.integers(0, 2, len(ATTRS))]
    values[int(rng.integers(0, len(ATTRS)))] = float(rng.choice([0.5, -1.0, 2.0, 1e30, math.nan, math.inf]))
    return values


def bad_face_box(rng) -> pb.FaceBox:
    kind = int(rng.integers(0, 3))
    if kind == 0:  # outside the image
        return pb.FaceBox(left=0, top=0, right=int(rng.integers(SIDE + 1, 2**31 - 1)), bottom=SIDE)
    if kind == 1:  # inverted
        left = int(rng.integers(1, SIDE))
        return pb.FaceBox(left=left, top=0, right=int(rng.integers(-(2**31), left)), bottom=SIDE)
    side = int(rng.integers(1, 8))  # too small
    return pb.FaceBox(left=0, top=0, right=side, bottom=side)


def bad_mask(rng) -> pb.Mask:
    kind = int(rng.integers(0, 4))
    if kind == 0:  # float32 of the wrong size
        n = int(rng.integers(0, 10_000))
        return pb.Mask(float32=rng.bytes(n + (n == SIDE * SIDE * 4)))
    if kind == 1:  # float32 values outside [0, 1] or not finite
        values = rng.uniform(0, 1, (SIDE, SIDE)).astype("<f4")
        values[rng.integers(0, SIDE), rng.integers(0, SIDE)] = rng.choice([-0.5, 1.5, np.nan, np.inf])
        return pb.Mask(float32=values.tobytes())
    if kind == 2:  # a colour PNG
        colour = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
        colour[0, 0] = (0, 255, 0)
        return pb.Mask(png=png_bytes(colour))
    side = int(rng.integers(16, 64))  # a grey PNG of another size
    return pb.Mask(png=png_bytes(rng.integers(0, 256, (side, side + 1), dtype=np.uint8), "L"))


def draw_protect(rng) -> tuple[dict, str]:
    """Fields of a ProtectImageRequest with one made invalid, and that field's name."""
    field = str(
        rng.choice(
            ["request_id", "image", "image", "image", "method", "epsilon", "steps", "step_size", "seed"]
            + ["targets", "original_attributes", "face_box", "saliency_mask"]
        )
    )
    fields = dict(image=raw(random_image(SIDE)), method="pgd", steps=1, targets=["Male"])
    if field == "request_id":
        fields["request_id"] = text(rng, 129, 100_000)
    elif field == "image":
        fields["image"] = bad_image(rng)
    elif field == "method":
        name = text(rng, 1, 6000)
        fields["method"] = name if name not in METHODS else name + "~"
    elif field == "epsilon":
        fields["epsilon"] = bad_float(rng, 1.0)
    elif field == "steps":
        fields["steps"] = int(rng.choice([rng.integers(-(2**31), 1), rng.integers(MAX_STEPS + 1, 2**31)]))
    elif field == "step_size":
        fields["step_size"] = bad_float(rng, 2.0)
    elif field == "seed":
        fields["seed"] = -int(rng.integers(1, 2**62))
    elif field == "targets":
        fields["targets"] = bad_targets(rng)
    elif field == "original_attributes":
        fields["original_attributes"] = bad_attributes(rng)
    elif field == "face_box":
        fields["face_box"] = bad_face_box(rng)
    else:
        fields.update(method="saliency-aware", saliency_mask=bad_mask(rng))
    return {k: v for k, v in fields.items() if v is not None}, field


def draw_evaluate(rng) -> tuple[dict, str]:
    field = str(rng.choice(["original", "protected", "shape"]))
    good = random_image(SIDE)
    fields = dict(original=raw(good), protected=raw(good))
    if field == "shape":
        field, fields["protected"] = "protected", raw(random_image(int(rng.integers(SIDE + 1, 60))))
    else:  # a missing protected image means "protect first": not an error
        fields[field] = bad_image(rng, may_be_missing=field == "original")
    return {k: v for k, v in fields.items() if v is not None}, field


def draw_cases(seed: int = SEED, n: int = CASES) -> list[tuple[str, bytes, str]]:
    """(rpc, request bytes, field expected in the violation), drawn from `seed`."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        roll = rng.uniform()
        if roll < 0.08:  # not a protobuf: field 1 with the invalid wire type 7, then noise
            cases.append((PROTECT, b"\x0f" + rng.bytes(int(rng.integers(0, 50))), "faceshield.v1.ProtectImageRequest"))
        elif roll < 0.2:
            fields, field = draw_evaluate(rng)
            cases.append((EVALUATE, pb.EvaluateRequest(**fields).SerializeToString(), field))
        else:
            fields, field = draw_protect(rng)
            cases.append((PROTECT, pb.ProtectImageRequest(**fields).SerializeToString(), field))
    return cases


CASES_DRAWN = draw_cases()


def test_the_draw_covers_every_field():
    fields = collections.Counter(field for _, _, field in CASES_DRAWN)
    assert set(fields) == {
        *("request_id", "image", "method", "epsilon", "steps", "step_size", "seed", "targets"),
        *("original_attributes", "face_box", "saliency_mask", "original", "protected"),
        "faceshield.v1.ProtectImageRequest",
    }
    assert fields["image"] + fields["original"] + fields["protected"] >= 60  # ~5 draws of each of 13 kinds


def test_every_fuzzed_unary_request_gets_a_typed_field_violation(server):
    with grpc.insecure_channel(server.target) as channel:
        calls = {rpc: channel.unary_unary(f"/faceshield.v1.FaceShield/{rpc}") for rpc in (PROTECT, EVALUATE)}
        for i, (rpc, data, field) in enumerate(CASES_DRAWN):
            with pytest.raises(grpc.RpcError) as caught:
                calls[rpc](data, timeout=20)
            error = caught.value
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (i, field, error.code(), error.details())
            bad, info = details(error)
            assert [v.field for v in bad.field_violations] == [field], (i, error.details())
            assert info.reason == "INVALID_INPUT" and 0 < len(info.metadata["request_id"]) <= 160
            assert sum(len(k) + len(v) for k, v in error.trailing_metadata()) < MAX_TRAILER_BYTES, i


def test_every_fuzzed_stream_item_gets_its_own_typed_error(server):
    items = [(data, field) for rpc, data, field in CASES_DRAWN if rpc == PROTECT]
    with grpc.insecure_channel(server.target) as channel:
        stream = channel.stream_stream("/faceshield.v1.FaceShield/ProtectStream")
        answers = [pb.ProtectStreamResponse.FromString(a) for a in stream(iter([d for d, _ in items]), timeout=60)]
    assert len(answers) == len(items)
    got = collections.Counter()
    for a in answers:
        assert a.WhichOneof("outcome") == "error" and a.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in a.error.details), a.error.message
        got[bad.field_violations[0].field] += 1
        assert len(a.error.SerializeToString()) < MAX_TRAILER_BYTES
    assert got == collections.Counter(field for _, field in items)
