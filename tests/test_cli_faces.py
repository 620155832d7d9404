"""`faceshield protect IMAGE -o OUT` on real photos: every face found and reported, no face
refused with what to do instead or the centre square when asked, EXIF kept only when asked and
never its GPS."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import ExifTags, Image

from faceshield.cli.main import main
from tests.helpers import write_tiny_model_set
from tests.photos import exif_block, group_photo, stored_as

FAST = ["--method", "pgd", "--steps", "1", "--policy", "fixed", "--targets", "Male", "--json"]
# Written, not protected (exit 3): the tiny toy's edits never pass as the person, so there is no
# identity to break and the verdict claims nothing. These tests are about faces and metadata.
WRITTEN = 3


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("models") / "tiny")


def test_every_face_of_a_group_photo_is_protected_and_reported(tmp_path, tiny_set, capsys):
    src = tmp_path / "group.png"
    Image.fromarray(group_photo()[0]).save(src)
    assert main(["protect", str(src), "-o", str(tmp_path / "out.png"), "--models", str(tiny_set), *FAST]) == WRITTEN
    report = json.loads(capsys.readouterr().out)
    assert not report["protected"] and report["identity"]["faces"]  # each face measured, nothing claimed
    assert report["faces"] == {"source": "detected", "detected": 3, "dropped": 0} and len(report["boxes"]) == 3
    assert {t["face"] for t in report["targets"]} == {0, 1, 2}


def test_no_face_is_refused_with_what_to_do_or_the_centre_square(tmp_path, tiny_set, capsys):
    src = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out.png"
    assert main(["protect", str(src), "-o", str(out), "--models", str(tiny_set), *FAST]) == 2
    assert "no face was found" in capsys.readouterr().err and not out.exists()
    # Written (the centre square), but no face for the recogniser: not protected, exit 3.
    assert main(["protect", str(src), "-o", str(out), "--models", str(tiny_set), *FAST, "--no-face", "centre"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["faces"]["source"] == "no-face-centre" and report["boxes"] == [[16, 0, 80, 64]]
    assert main(["protect", str(src), "-o", str(out), "--models", str(tiny_set), *FAST[:-1], "--faces", "centre"]) == 3
    assert "(the centre square)" in capsys.readouterr().out


def test_exif_is_kept_only_when_asked_and_never_its_gps(tmp_path, tiny_set, capsys):
    src = tmp_path / "phone.jpg"
    upright = group_photo()[0][:, :560]  # 560 wide, 400 high; stored 400 wide, 560 high
    stored_as(Image.fromarray(upright), 6).save(src, quality=95, exif=exif_block(6))
    for keep, has_make in (([], False), (["--keep-metadata", "exif"], True)):
        out = tmp_path / f"out{len(keep)}.png"
        assert main(["protect", str(src), "-o", str(out), "--models", str(tiny_set), *FAST, *keep]) == WRITTEN
        assert json.loads(capsys.readouterr().out)["size"] == [560, 400]  # upright
        data = out.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (upright.shape[1], upright.shape[0])
            exif = img.getexif()
            assert (exif.get(ExifTags.Base.Make) == "PhoneCo") is has_make
            assert ExifTags.IFD.GPSInfo not in exif and ExifTags.Base.Orientation not in exif
        assert b"serial 12345" not in data
