"""Every bad input of the engine, sent over gRPC: INVALID_ARGUMENT naming the field to fix."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2
from PIL import Image

from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.helpers import png_from_samples
from tests.service.servers import ServerThread, png_bytes, random_image, test_settings

MAX_PIXELS = 200 * 200
MAX_STEPS = 20


@pytest.fixture(scope="module")
def stub():
    with ServerThread(test_settings(max_pixels=MAX_PIXELS, max_steps=MAX_STEPS, metrics_port=-1)) as s:
        with grpc.insecure_channel(s.target) as channel:
            yield pb_grpc.FaceShieldStub(channel)


def raw(image: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(data=image.tobytes(), width=image.shape[1], height=image.shape[0]))


def encoded(img: Image.Image, fmt: str = "PNG") -> pb.Image:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return pb.Image(encoded=buffer.getvalue())


GOOD = random_image(32)
# Noise has no face: where a request must get past the face finding, it asks for the centre square.
# (The bad fields below are checked before the detector runs, so they need not.)
CENTRE = pb.FaceDetection(enabled=False)
PNG = png_bytes(GOOD)
rgba = np.dstack([GOOD, np.full((32, 32), 128, np.uint8)])
colour_mask = random_image(32, seed=9)

# (name, request fields, field named in the violation)
CASES = [
    ("no image", dict(image=None), "image"),
    ("empty bytes", dict(image=pb.Image(encoded=b"")), "image"),
    ("not an image", dict(image=pb.Image(encoded=b"hello, this is not a picture")), "image"),
    ("truncated png", dict(image=pb.Image(encoded=PNG[: len(PNG) // 2])), "image"),
    ("gif", dict(image=encoded(Image.fromarray(GOOD), "GIF")), "image"),
    ("16-bit png", dict(image=encoded(Image.fromarray(np.zeros((32, 32), np.uint16) + 300))), "image"),
    ("16-bit rgb png", dict(image=pb.Image(encoded=png_from_samples(np.full((32, 32, 3), 300), 16, 2))), "image"),
    (
        "16-bit grey+alpha png",
        dict(image=pb.Image(encoded=png_from_samples(np.full((32, 32, 2), 65535), 16, 4))),
        "image",
    ),
    ("16-bit rgba png", dict(image=pb.Image(encoded=png_from_samples(np.full((32, 32, 4), 65535), 16, 6))), "image"),
    ("transparent png", dict(image=pb.Image(encoded=png_bytes(rgba, "RGBA"))), "image"),
    ("too small", dict(image=raw(random_image(8))), "image"),
    ("too many pixels", dict(image=raw(random_image(256))), "image"),
    ("huge canvas header", dict(image=encoded(Image.new("L", (5000, 5000)))), "image"),
    ("raw size mismatch", dict(image=pb.Image(raw=pb.RawImage(data=b"\0" * 100, width=32, height=32))), "image"),
    ("raw negative size", dict(image=pb.Image(raw=pb.RawImage(data=b"", width=-4, height=32))), "image"),
    ("unknown method", dict(method="fgsm-deluxe"), "method"),
    ("epsilon zero", dict(epsilon=0.0), "epsilon"),
    ("epsilon negative", dict(epsilon=-0.1), "epsilon"),
    ("epsilon nan", dict(epsilon=float("nan")), "epsilon"),
    ("epsilon too big", dict(epsilon=1.5), "epsilon"),
    ("steps zero", dict(steps=0), "steps"),
    ("steps negative", dict(steps=-3), "steps"),
    ("steps above limit", dict(steps=MAX_STEPS + 1), "steps"),
    ("step size zero", dict(step_size=0.0), "step_size"),
    ("step size inf", dict(step_size=float("inf")), "step_size"),
    ("seed negative", dict(seed=-1), "seed"),
    ("unknown target", dict(targets=["Bald"]), "targets"),
    ("duplicate target", dict(targets=["Male", "Male"]), "targets"),
    ("attributes too short", dict(original_attributes=[1, 0]), "original_attributes"),
    ("attributes not 0/1", dict(original_attributes=[0.5, 0, 0, 1, 0]), "original_attributes"),
    ("box outside", dict(face_box=pb.FaceBox(left=0, top=0, right=64, bottom=20)), "face_box"),
    ("box inverted", dict(face_box=pb.FaceBox(left=20, top=0, right=10, bottom=20)), "face_box"),
    ("box too small", dict(face_box=pb.FaceBox(left=0, top=0, right=8, bottom=8)), "face_box"),
    ("mask wrong size", dict(method="saliency-aware", saliency_mask=pb.Mask(float32=b"\0" * 16)), "saliency_mask"),
    (
        "mask out of range",
        dict(method="saliency-aware", saliency_mask=pb.Mask(float32=np.full((32, 32), 2.0, "<f4").tobytes())),
        "saliency_mask",
    ),
    (
        "mask png in colour",
        dict(method="saliency-aware", saliency_mask=pb.Mask(png=png_bytes(colour_mask))),
        "saliency_mask",
    ),
    (
        "mask png wrong size",
        dict(method="saliency-aware", saliency_mask=pb.Mask(png=png_bytes(np.zeros((16, 16), np.uint8), "L"))),
        "saliency_mask",
    ),
    ("saliency method, no mask, no model", dict(method="union-saliency"), "saliency_mask"),
    ("policy unknown", dict(policy=pb.Policy(kind="sometimes")), "policy.kind"),
    ("budget negative", dict(policy=pb.Policy(kind="ensure", budget_steps=-5)), "policy.budget_steps"),
    (
        "budget below the first round",
        dict(steps=5, policy=pb.Policy(kind="ensure", budget_steps=3)),
        "policy.budget_steps",
    ),
    (
        "budget above the limit",
        dict(policy=pb.Policy(kind="ensure", budget_steps=MAX_STEPS * 10 + 1)),
        "policy.budget_steps",
    ),
    ("margin negative", dict(policy=pb.Policy(margin=-0.5)), "policy.margin"),
    ("margin nan", dict(policy=pb.Policy(margin=float("nan"))), "policy.margin"),
    ("margin too big", dict(policy=pb.Policy(margin=11.0)), "policy.margin"),
    ("jpeg quality 0", dict(policy=pb.Policy(verify_after=["jpeg0"])), "policy.verify_after"),
    ("jpeg quality 101", dict(policy=pb.Policy(verify_after=["jpeg101"])), "policy.verify_after"),
    ("unknown processing", dict(policy=pb.Policy(verify_after=["sharpen"])), "policy.verify_after"),
]


def field_of(error: grpc.RpcError) -> str:
    for key, value in error.trailing_metadata():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return bad.field_violations[0].field
    raise AssertionError("no BadRequest detail")


@pytest.mark.parametrize(("name", "fields", "field"), CASES, ids=[c[0] for c in CASES])
def test_protect_bad_input(stub, name, fields, field):
    args = dict(image=raw(GOOD), method="pgd", steps=1, targets=["Male"])
    args.update(fields)
    if args["image"] is None:
        del args["image"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ProtectImage(pb.ProtectImageRequest(**args), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field_of(caught.value) == field
    assert field in caught.value.details()


EVALUATE_CASES = [
    ("no original", dict(original=None), "original"),
    ("bad original", dict(original=pb.Image(encoded=b"junk")), "original"),
    ("bad protected", dict(protected=pb.Image(encoded=b"junk")), "protected"),
    ("size mismatch", dict(protected=raw(random_image(40))), "protected"),
    ("unknown target", dict(targets=["Bald"]), "targets"),
    ("bad box", dict(face_box=pb.FaceBox(left=0, top=0, right=99, bottom=99)), "face_box"),
    ("protect first: bad epsilon", dict(protected=None, epsilon=-1.0), "epsilon"),
    ("protect first: bad original", dict(protected=None, original=pb.Image(encoded=b"x")), "original"),
]


@pytest.mark.parametrize(("name", "fields", "field"), EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_bad_input(stub, name, fields, field):
    args = dict(original=raw(GOOD), protected=raw(GOOD), method="pgd", steps=1)
    args.update(fields)
    args = {k: v for k, v in args.items() if v is not None}
    with pytest.raises(grpc.RpcError) as caught:
        stub.Evaluate(pb.EvaluateRequest(**args), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field_of(caught.value) == field


def test_server_still_serves_after_bad_inputs(stub):
    reply = stub.ProtectImage(
        pb.ProtectImageRequest(image=raw(GOOD), method="pgd", steps=1, targets=["Male"], detect_faces=CENTRE),
        timeout=20,
    )
    assert reply.width == 32


def test_robust_stage_on_a_victim_too_small_for_it_says_what_is_needed():
    from tests.service.servers import tiny_engine

    settings = test_settings(metrics_port=-1)
    with ServerThread(settings, tiny_engine(settings, resolution=16)) as s, grpc.insecure_channel(s.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        mask = pb.Mask(float32=np.full((32, 32), 0.5, "<f4").tobytes())
        request = pb.ProtectImageRequest(
            image=raw(GOOD), method="union-saliency-robust", steps=1, saliency_mask=mask, detect_faces=CENTRE
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.ProtectImage(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(caught.value) == "method" and "at least 32x32" in caught.value.details()
