"""Where model sets live and how they are read and written.

A set is named by its path or, for installed sets, by its name: the directories listed in
``$FACESHIELD_MODELS`` (``os.pathsep``-separated), then ``$XDG_DATA_HOME/faceshield/models``
(default ``~/.local/share/faceshield/models``), then the sets shipped inside the package
(`BUILTIN_DIR`, e.g. ``demo``). Every file is checked against the manifest's hash when read.

Writing is atomic: files go into a temporary directory beside the destination, which is renamed
into place only when complete, so a failure (full disk, read-only directory, bad checkpoint)
never leaves a half-written set behind, and two processes writing the same set leave one whole
copy.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import FaceShieldError, ModelLoadError
from .manifest import MANIFEST_FILE, NAME_PATTERN, ComponentManifest, ModelSetManifest, sha256_bytes

log = logging.getLogger(__name__)

ENV_PATH = "FACESHIELD_MODELS"
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
DEMO_NAME = "demo"


class ModelSetWriteError(FaceShieldError):
    """A model set cannot be written (destination exists, read-only, disk full, ...)."""


def search_paths() -> list[Path]:
    """Where installed sets are looked up by name, first match wins."""
    paths = [Path(p).expanduser() for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    paths.append(data_home() / "models")
    paths.append(BUILTIN_DIR)
    return paths


def data_home() -> Path:
    """FaceShield's own data directory: ``$XDG_DATA_HOME/faceshield`` (``~/.local/share/faceshield``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "faceshield"


def user_models_dir() -> Path:
    """Where `faceshield models import --name` installs a set (first writable search path)."""
    env = [p for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    if env:
        return Path(env[0]).expanduser()
    return data_home() / "models"


def resolve(path_or_name: str | Path) -> Path:
    """The set directory a path or installed name refers to."""
    text = str(path_or_name)
    p = Path(text).expanduser()
    if p.is_dir():
        return p
    if p.is_file() and p.name == MANIFEST_FILE:
        return p.parent
    if NAME_PATTERN.match(text) and os.sep not in text:
        for root in search_paths():
            if (root / text / MANIFEST_FILE).is_file():
                return root / text
    known = sorted({d.name for d, _ in iter_model_sets()})
    hint = f"; installed sets: {', '.join(known)}" if known else ""
    raise ModelLoadError(f"no model set at {text!r} (not a directory, and no installed set of that name{hint})")


def read_manifest(directory: str | Path) -> ModelSetManifest:
    d = Path(directory)
    path = d / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"{d} is not a model set: {MANIFEST_FILE} is missing")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path} ({exc})") from None
    return ModelSetManifest.from_json(text, str(path))


def iter_model_sets() -> list[tuple[Path, ModelSetManifest | ModelLoadError]]:
    """Every set under the search paths (shadowed names included), with its manifest or the
    error reading it."""
    out: list[tuple[Path, ModelSetManifest | ModelLoadError]] = []
    for root in search_paths():
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / MANIFEST_FILE).is_file():
                try:
                    out.append((d, read_manifest(d)))
                except ModelLoadError as exc:
                    out.append((d, exc))
    return out


def read_checked(directory: Path, comp: ComponentManifest) -> bytes:
    """A component's bytes, refused unless they match the manifest's SHA-256."""
    path = directory / comp.file
    if not path.is_file():
        raise ModelLoadError(f"model set {directory} is incomplete: {comp.file} is missing")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != comp.sha256:
        raise ModelLoadError(
            f"{path} does not match its manifest (SHA-256 {digest[:16]}..., manifest says "
            f"{comp.sha256[:16]}...): the file is corrupt or was replaced; re-create the set"
        )
    return data


def verify_model_set(path_or_name: str | Path) -> ModelSetManifest:
    """Check that every file is present and matches its hash; return the manifest."""
    d = resolve(path_or_name)
    manifest = read_manifest(d)
    for comp in manifest.components:
        read_checked(d, comp)
    return manifest


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_error(dest: Path, exc: OSError) -> ModelSetWriteError:
    reason = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return ModelSetWriteError(f"cannot write model set {dest}: {reason}; nothing was left behind")


def write_model_set(
    dest: str | Path,
    manifest: ModelSetManifest,
    files: dict[str, bytes],
    overwrite: bool = False,
    exist_ok: bool = False,
) -> Path:
    """Write `files` (name -> bytes, as the manifest lists them) and the manifest to `dest`,
    atomically. The manifest's hashes and sizes must match the bytes. `exist_ok`: a set already
    at `dest` (another process won the race to write the same set) is kept and not an error."""
    dest = Path(dest).expanduser()
    listed = {c.file: c for c in manifest.components}
    if set(listed) != set(files):
        raise ValueError(f"files {sorted(files)} differ from the manifest's {sorted(listed)}")
    for name, data in files.items():
        if sha256_bytes(data) != listed[name].sha256:
            raise ValueError(f"{name}: bytes do not match the manifest hash")
    if dest.exists() and not overwrite:
        if exist_ok:
            return dest
        raise ModelSetWriteError(f"{dest} already exists; choose another name or pass --force to replace it")
    parent = dest.parent
    tmp = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent))
        for name, data in files.items():
            _fsync_write(tmp / name, data)
        _fsync_write(tmp / MANIFEST_FILE, manifest.to_json().encode("utf-8"))
        os.chmod(tmp, 0o755)
        if dest.exists():  # --force: swap, then drop the old set
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=parent))
            os.rename(dest, old / "set")
            os.rename(tmp, dest)
            tmp = None
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, dest)
                tmp = None
            except OSError as exc:  # another writer finished first: its set stands, ours goes
                if not (exist_ok and exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and dest.is_dir()):
                    raise
    except OSError as exc:
        raise _write_error(dest, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote model set %s to %s", manifest.name, dest)
    return dest
