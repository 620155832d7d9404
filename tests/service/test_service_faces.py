"""Faces found by the service (`detect_faces`), through the SDK and raw stubs: every face of a
group photo protected with one perturbation and nothing outside its boxes touched; an image
without a face refused by default (the SDK's and an unset proto field alike), or its centre
square where asked; the response says which boxes and where they came from; a sideways phone
JPEG comes back upright with no metadata."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from PIL import Image

from faceshield.client import FaceShieldClient, InputError, InvalidArgumentError
from faceshield.v1 import faceshield_pb2 as pb
from faceshield.v1 import faceshield_pb2_grpc as pb_grpc
from tests.photos import exif_block, group_photo, stored_as
from tests.service.servers import ServerThread, decode_png, png_bytes
from tests.service.test_service_bad_inputs import field_of

FAST = {"method": "pgd", "steps": 2, "targets": ["Male"], "policy": "fixed", "timeout": 60}


@pytest.fixture(scope="module")
def server():
    with ServerThread() as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with FaceShieldClient(server.target) as c:
        yield c


def test_every_face_of_a_group_photo_is_found_and_protected(client):
    scene, regions = group_photo()
    result = client.protect(png_bytes(scene), detect_faces=True, **FAST)
    assert result.face_source == "detected" and result.faces_detected == 3 and len(result.faces) == 3
    assert {t.face for t in result.targets} == {0, 1, 2}
    diff = np.abs(decode_png(result.png).astype(int) - scene.astype(int)).max(axis=2)
    inside = np.zeros(diff.shape, bool)
    for left, top, right, bottom in result.faces:
        inside[top:bottom, left:right] = True
        assert diff[top:bottom, left:right].any()
    assert diff[~inside].max() == 0
    for region in regions:  # each pasted face lies in one of the boxes used
        assert any(b[0] <= region[0] + 30 and b[2] >= region[2] - 30 for b in result.faces)


def test_no_face_is_refused_naming_the_option_or_the_centre_square_as_asked(client, server):
    noise = png_bytes(np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    for asked in ({}, {"detect_faces": True}):  # detection is the default, as on the command line
        with pytest.raises(InvalidArgumentError) as refused:
            client.protect(noise, **asked, **FAST)
        assert refused.value.fields == ["detect_faces"] and "no face was found" in str(refused.value)
    with pytest.raises(InvalidArgumentError) as refused:
        client.evaluate(noise, noise, targets=["Male"], timeout=60)
    assert refused.value.fields == ["detect_faces"]
    centre = client.protect(noise, no_face="centre", **FAST)
    assert centre.face_source == "no-face-centre" and centre.faces == [(16, 0, 112, 96)]
    square = client.protect(noise, detect_faces=False, **FAST)  # no detector: the centre square
    assert square.face_source == "centre" and square.faces == [(16, 0, 112, 96)] and square.faces_detected == 0
    given = client.protect(noise, face_box=(0, 0, 40, 40), **FAST)
    assert given.face_source == "given" and given.faces == [(0, 0, 40, 40)]
    with pytest.raises(InputError):
        client.protect(noise, no_face="guess", **FAST)

    # A raw request that leaves `detect_faces` unset gets the same default; `enabled: false` the centre.
    image = pb.Image(encoded=noise)
    fixed = pb.Policy(kind="fixed")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.FaceShieldStub(channel)
        unset = pb.ProtectImageRequest(image=image, method="pgd", steps=2, targets=["Male"], policy=fixed)
        evaluate = pb.EvaluateRequest(original=image, protected=image, targets=["Male"])
        assert not unset.HasField("detect_faces") and not evaluate.HasField("detect_faces")
        for call, request in ((stub.ProtectImage, unset), (stub.Evaluate, evaluate)):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=60)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
            assert field_of(caught.value) == "detect_faces" and "no face was found" in caught.value.details()
            request.detect_faces.CopyFrom(pb.FaceDetection(enabled=False))
            reply = call(request, timeout=60)
            assert reply.face_source == pb.FACE_SOURCE_CENTRE and reply.faces_detected == 0
            assert [(b.left, b.top, b.right, b.bottom) for b in reply.faces] == [(16, 0, 112, 96)]


def test_a_sideways_phone_jpeg_comes_back_upright_without_metadata(client):
    upright = np.asarray(Image.fromarray(group_photo()[0]).resize((180, 100)))
    buffer = io.BytesIO()
    stored_as(Image.fromarray(upright), 8).save(buffer, format="JPEG", quality=95, exif=exif_block(8))
    result = client.protect(buffer.getvalue(), **FAST)
    assert (result.width, result.height) == (180, 100)
    with Image.open(io.BytesIO(result.png)) as img:
        assert not img.info and not img.getexif()
    assert b"PhoneCo" not in result.png and b"GPS" not in result.png
