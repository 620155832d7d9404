"""Model sets on disk: a directory holding a manifest, the generator and the saliency model.

    <set>/manifest.json   what the set is (name, version, architectures and their parameters,
                          resolution, attribute names, SHA-256 of each file, how it was made,
                          figures measured on it)
    <set>/generator.pt    StarGAN generator, TorchScript (`models.torchscript`)
    <set>/saliency.onnx   TRACER, ONNX (`models.tracer.export`); absent when the set has none

A set is named by its path or, for installed sets, by its name: the directories listed in
``$FACESHIELD_MODELS`` (``os.pathsep``-separated), then ``$XDG_DATA_HOME/faceshield/models``
(default ``~/.local/share/faceshield/models``), then the sets shipped inside the package
(`BUILTIN_DIR`, e.g. ``demo``). Loading checks every file against the manifest's hash and
refuses, with an error naming the file, when one is missing or differs.

Writing is atomic: files go into a temporary directory beside the destination, which is renamed
into place only when complete, so a failure (full disk, read-only directory, bad checkpoint)
never leaves a half-written set behind.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .errors import FaceShieldError, InvalidInputError, ModelLoadError
from .modelset import ModelSet

log = logging.getLogger(__name__)

FORMAT = "faceshield-model-set"
FORMAT_VERSION = 1  # bump when a reader of the old format could misread the new one
MANIFEST_FILE = "manifest.json"
GENERATOR_FILE = "generator.pt"
SALIENCY_FILE = "saliency.onnx"
# TRACER's weights for PyTorch, beside its ONNX graph (optional): lets a GPU machine without
# onnxruntime-gpu run TRACER on the GPU instead of on ONNX Runtime's CPU provider.
SALIENCY_TORCH_FILE = "saliency.pt"
SALIENCY_RUNTIMES = ("auto", "onnxruntime", "torch")
ENV_PATH = "FACESHIELD_MODELS"
BUILTIN_DIR = Path(__file__).resolve().parent / "assets" / "models"
DEMO_NAME = "demo"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelSetWriteError(FaceShieldError):
    """A model set cannot be written (destination exists, read-only, disk full, ...)."""


# -- manifest ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentManifest:
    """One model file of a set.

    file: name inside the set directory; format: "torchscript", "onnx" or "pytorch-state-dict";
    architecture: "stargan" or "tracer"; parameters: the architecture's constructor values
    (StarGAN conv_dim / c_dim / repeat_num; TRACER variant / input_size); sha256 and size of the
    file; source: where the weights came from (a checkpoint's name and hash, or a training run).
    """

    file: str
    format: str
    architecture: str
    parameters: dict
    sha256: str
    size_bytes: int
    source: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSetManifest:
    name: str
    version: str
    resolution: int
    attributes: list[str]
    generator: ComponentManifest
    saliency: ComponentManifest | None
    produced_by: dict  # tool, versions, date, sources, checks
    trained: bool = True
    description: str = ""
    metrics: dict = field(default_factory=dict)
    saliency_torch: ComponentManifest | None = None  # optional; older readers ignore it
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @property
    def components(self) -> list[ComponentManifest]:
        return [c for c in (self.generator, self.saliency, self.saliency_torch) if c is not None]

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> ModelSetManifest:
        """Parse and validate; `ModelLoadError` says what is wrong and where."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{where} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelLoadError(f'{where} is not a FaceShield model-set manifest (no "format": "{FORMAT}")')
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelLoadError(f"{where}: format_version must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise ModelLoadError(
                f"{where} was written by a newer FaceShield (model-set format {version}; this build reads "
                f"format {FORMAT_VERSION} and older): upgrade FaceShield to load it"
            )
        try:
            gen = _component(data["generator"], "generator")
            sal = None if data.get("saliency") is None else _component(data["saliency"], "saliency")
            sal_torch = (
                None if data.get("saliency_torch") is None else _component(data["saliency_torch"], "saliency_torch")
            )
            manifest = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                resolution=int(data["resolution"]),
                attributes=[str(a) for a in data["attributes"]],
                generator=gen,
                saliency=sal,
                produced_by=dict(data.get("produced_by") or {}),
                trained=bool(data.get("trained", True)),
                description=str(data.get("description", "")),
                metrics=dict(data.get("metrics") or {}),
                saliency_torch=sal_torch,
                format=FORMAT,
                format_version=version,
            )
        except KeyError as exc:
            raise ModelLoadError(f"{where} lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{where} has a malformed field ({exc})") from None
        manifest.validate(where)
        return manifest

    def validate(self, where: str = "manifest") -> None:
        if not _NAME.match(self.name):
            raise ModelLoadError(f"{where}: name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if self.resolution < 8 or self.resolution % 4:
            raise ModelLoadError(f"{where}: resolution must be a multiple of 4, got {self.resolution}")
        if not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise ModelLoadError(f"{where}: attributes must be a non-empty list of distinct names")
        if self.saliency_torch is not None and self.saliency is None:
            raise ModelLoadError(f"{where}: saliency_torch needs the saliency (ONNX) component beside it")
        c_dim = self.generator.parameters.get("c_dim")
        if c_dim is not None and int(c_dim) != len(self.attributes):
            raise ModelLoadError(f"{where}: generator c_dim {c_dim} != {len(self.attributes)} attributes")
        for comp in self.components:
            if Path(comp.file).name != comp.file or comp.file in ("", ".", "..", MANIFEST_FILE):
                raise ModelLoadError(f"{where}: file name {comp.file!r} must be a plain name inside the set")


def _component(data: dict, what: str) -> ComponentManifest:
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be an object")
    sha = str(data["sha256"]).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ValueError(f"{what}.sha256 is not a SHA-256 hex digest")
    return ComponentManifest(
        file=str(data["file"]),
        format=str(data["format"]),
        architecture=str(data["architecture"]),
        parameters=dict(data.get("parameters") or {}),
        sha256=sha,
        size_bytes=int(data.get("size_bytes", -1)),
        source=dict(data.get("source") or {}),
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# -- finding sets -----------------------------------------------------------------------------
def search_paths() -> list[Path]:
    """Where installed sets are looked up by name, first match wins."""
    paths = [Path(p).expanduser() for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    paths.append(Path(data_home) / "faceshield" / "models")
    paths.append(BUILTIN_DIR)
    return paths


def user_models_dir() -> Path:
    """Where `faceshield models import --name` installs a set (first writable search path)."""
    env = [p for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    if env:
        return Path(env[0]).expanduser()
    return search_paths()[-2]


def resolve(path_or_name: str | Path) -> Path:
    """The set directory a path or installed name refers to."""
    text = str(path_or_name)
    p = Path(text).expanduser()
    if p.is_dir():
        return p
    if p.is_file() and p.name == MANIFEST_FILE:
        return p.parent
    if _NAME.match(text) and os.sep not in text:
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
    out = []
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


# -- loading ----------------------------------------------------------------------------------
def _read_checked(directory: Path, comp: ComponentManifest) -> bytes:
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
        _read_checked(d, comp)
    return manifest


def load_model_set(
    path_or_name: str | Path,
    *,
    with_saliency: bool = True,
    providers: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    saliency_runtime: str = "auto",
) -> ModelSet:
    """Load a set by directory or installed name, checking hashes. `with_saliency=False` skips
    the saliency model (for configurations that never use M_sm); `providers` go to ONNX Runtime.

    `saliency_runtime`: "onnxruntime" runs the ONNX graph; "torch" runs the set's PyTorch TRACER
    weights on `device` (the set must have them); "auto" takes ONNX Runtime, except on a CUDA
    `device` where ONNX Runtime has no CUDA provider and the set has PyTorch weights: TRACER then
    runs on the GPU beside the generator rather than on the CPU.
    """
    from .models.torchscript import load_generator_artifact

    if saliency_runtime not in SALIENCY_RUNTIMES:
        raise InvalidInputError(
            "saliency_runtime", f"unknown runtime {saliency_runtime!r}; choose {', '.join(SALIENCY_RUNTIMES)}"
        )
    d = resolve(path_or_name)
    m = read_manifest(d)
    if m.generator.format != "torchscript" or m.generator.architecture != "stargan":
        raise ModelLoadError(f"{d}: unsupported generator {m.generator.architecture}/{m.generator.format}")
    generator, _ = load_generator_artifact(_read_checked(d, m.generator))
    _check_generator(generator, m, d)
    hashes = {m.generator.file: m.generator.sha256}
    saliency, saliency_name, used = None, "none", []
    if m.saliency is not None:
        hashes[m.saliency.file] = m.saliency.sha256
        if with_saliency:
            saliency = _load_saliency(d, m, providers, torch.device(device), saliency_runtime)
            saliency_name, used = saliency.name, list(saliency.providers)
    log.info("loaded model set %s %s from %s", m.name, m.version, d)
    return ModelSet(
        name=m.name,
        version=m.version,
        generator=generator,
        attributes=list(m.attributes),
        resolution=m.resolution,
        saliency=saliency,
        saliency_name=saliency_name,
        hashes=hashes,
        trained=m.trained,
        description=m.description,
        providers=used,
    )


def _load_saliency(d: Path, m: ModelSetManifest, providers, device: torch.device, runtime: str):
    from .saliency import TorchSaliency, TracerSaliency, cuda_provider_listed

    variant = m.saliency.parameters.get("variant", "")
    name = f"TRACER {variant} ({m.name})".replace("  ", " ")
    if runtime == "torch" and m.saliency_torch is None:
        raise ModelLoadError(
            f"{d}: this set has no PyTorch TRACER weights ({SALIENCY_TORCH_FILE}); "
            "re-import it with `faceshield models import`, or use --saliency-runtime onnxruntime"
        )
    # "auto" on a GPU with PyTorch weights at hand: an ONNX Runtime that does not even list CUDA
    # (the usual CPU-only build) is not worth a session; one that lists it must prove it can start.
    torch_ok = runtime == "auto" and device.type == "cuda" and m.saliency_torch is not None
    if runtime == "onnxruntime" or (runtime == "auto" and not (torch_ok and not cuda_provider_listed(providers))):
        if m.saliency.format != "onnx":
            raise ModelLoadError(f"{d}: unsupported saliency format {m.saliency.format!r}")
        onnx_runner = TracerSaliency(_read_checked(d, m.saliency), name=name, providers=providers)
        on_gpu = "CUDAExecutionProvider" in onnx_runner.providers
        if on_gpu or not torch_ok:
            if device.type == "cuda" and not on_gpu:
                log.info(
                    "TRACER runs on ONNX Runtime's CPU provider (no CUDA provider here%s)",
                    "" if m.saliency_torch is None else "; --saliency-runtime torch would use the GPU",
                )
            return onnx_runner
    if runtime == "auto":
        log.info("ONNX Runtime has no working CUDA provider here: TRACER runs in PyTorch on %s", device)
    return TorchSaliency(_load_torch_tracer(d, m), device=device, name=name)


def _load_torch_tracer(d: Path, m: ModelSetManifest):
    import io

    from .models.tracer import load_tracer

    comp = m.saliency_torch
    if comp.format != "pytorch-state-dict" or comp.architecture != "tracer":
        raise ModelLoadError(f"{d}: unsupported saliency_torch {comp.architecture}/{comp.format}")
    data = _read_checked(d, comp)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{d}/{comp.file} is not a readable PyTorch state dict ({exc.__class__.__name__})"
        ) from None
    return load_tracer(state, comp.parameters.get("variant", "TE-0"), input_size=comp.parameters.get("input_size"))


def _check_generator(generator, m: ModelSetManifest, d: Path) -> None:
    """The TorchScript weights must agree with the manifest's attributes."""
    try:
        first = generator.state_dict()["main.0.weight"]
    except (KeyError, RuntimeError):
        raise ModelLoadError(f"{d}/{m.generator.file} is not a StarGAN generator (no main.0.weight)") from None
    if first.shape[1] - 3 != len(m.attributes):
        raise ModelLoadError(
            f"{d}: the generator takes {first.shape[1] - 3} labels but the manifest names "
            f"{len(m.attributes)} attributes ({', '.join(m.attributes)})"
        )


# -- writing ----------------------------------------------------------------------------------
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
    }.get(exc.errno, exc.strerror or str(exc))
    return ModelSetWriteError(f"cannot write model set {dest}: {reason}; nothing was left behind")


def write_model_set(
    dest: str | Path, manifest: ModelSetManifest, files: dict[str, bytes], overwrite: bool = False
) -> Path:
    """Write `files` (name -> bytes, as the manifest lists them) and the manifest to `dest`,
    atomically. The manifest's hashes and sizes must match the bytes."""
    dest = Path(dest).expanduser()
    listed = {c.file: c for c in manifest.components}
    if set(listed) != set(files):
        raise ValueError(f"files {sorted(files)} differ from the manifest's {sorted(listed)}")
    for name, data in files.items():
        if sha256_bytes(data) != listed[name].sha256:
            raise ValueError(f"{name}: bytes do not match the manifest hash")
    if dest.exists() and not overwrite:
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
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
        tmp = None
    except OSError as exc:
        raise _write_error(dest, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote model set %s to %s", manifest.name, dest)
    return dest


def build_manifest(
    *,
    name: str,
    version: str,
    resolution: int,
    attributes: Sequence[str],
    generator_bytes: bytes,
    generator_parameters: dict,
    generator_source: dict,
    saliency_bytes: bytes | None,
    saliency_parameters: dict | None = None,
    saliency_source: dict | None = None,
    produced_by: dict,
    trained: bool = True,
    description: str = "",
    metrics: dict | None = None,
    saliency_torch_bytes: bytes | None = None,
) -> ModelSetManifest:
    """A manifest for the given files, hashes computed here."""
    gen = ComponentManifest(
        GENERATOR_FILE,
        "torchscript",
        "stargan",
        dict(generator_parameters),
        sha256_bytes(generator_bytes),
        len(generator_bytes),
        dict(generator_source),
    )
    sal = None
    if saliency_bytes is not None:
        sal = ComponentManifest(
            SALIENCY_FILE,
            "onnx",
            "tracer",
            dict(saliency_parameters or {}),
            sha256_bytes(saliency_bytes),
            len(saliency_bytes),
            dict(saliency_source or {}),
        )
    sal_torch = None
    if saliency_torch_bytes is not None:
        sal_torch = ComponentManifest(
            SALIENCY_TORCH_FILE,
            "pytorch-state-dict",
            "tracer",
            dict(saliency_parameters or {}),
            sha256_bytes(saliency_torch_bytes),
            len(saliency_torch_bytes),
            dict(saliency_source or {}),
        )
    info = {
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "faceshield": _faceshield_version(),
        "torch": torch.__version__,
    }
    info.update(produced_by)
    m = ModelSetManifest(
        name=name,
        version=version,
        resolution=int(resolution),
        attributes=list(attributes),
        generator=gen,
        saliency=sal,
        produced_by=info,
        trained=trained,
        description=description,
        metrics=dict(metrics or {}),
        saliency_torch=sal_torch,
    )
    m.validate("new manifest")
    return m


def _faceshield_version() -> str:
    try:
        from importlib.metadata import version

        return version("faceshield")
    except Exception:  # running from a bare checkout
        return "unknown"


# -- importing official checkpoints -----------------------------------------------------------
TORCHSCRIPT_TOLERANCE = 1e-4
ONNX_TOLERANCE = 2e-3
_TRACER_FILE = re.compile(r"TRACER-Efficient-(\d)", re.IGNORECASE)


def tracer_variant_from_name(path: str | Path) -> str | None:
    """ "TRACER-Efficient-5.pth" -> "TE-5" (None when the name does not say)."""
    m = _TRACER_FILE.search(Path(path).name)
    return f"TE-{m.group(1)}" if m else None


def check_torchscript(eager: torch.nn.Module, scripted, resolution: int, c_dim: int, seed: int = 0) -> float:
    """Max |eager - TorchScript| over outputs and input gradients on random inputs; raises
    `ModelLoadError` above `TORCHSCRIPT_TOLERANCE`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, resolution, resolution, generator=g) * 2 - 1
    c = (torch.rand(2, c_dim, generator=g) > 0.5).float()
    diffs = []
    outs, grads = [], []
    for model in (eager, scripted):
        xi = x.clone().requires_grad_(True)
        y = model(xi, c)
        (grad,) = torch.autograd.grad(y.square().sum(), xi)
        outs.append(y.detach())
        grads.append(grad)
    diffs.append(float((outs[0] - outs[1]).abs().max()))
    diffs.append(float((grads[0] - grads[1]).abs().max() / grads[0].abs().max().clamp_min(1e-12)))
    worst = max(diffs)
    if not worst <= TORCHSCRIPT_TOLERANCE:
        raise ModelLoadError(
            f"the TorchScript generator differs from the eager one by {worst:.2e} "
            f"(tolerance {TORCHSCRIPT_TOLERANCE:g}); not writing the set"
        )
    return worst


def check_onnx(reference: Callable, onnx_runner: Callable, input_size: int, seed: int = 0) -> float:
    """Max |PyTorch - ONNX| saliency on random image-like inputs at the model's input size;
    raises `ModelLoadError` above `ONNX_TOLERANCE`.

    The inputs are smooth (8x8 noise upsampled): per-pixel iid noise pushes a trained TRACER's
    top-k attention selection into near-ties, where a float32 rounding difference between the two
    runtimes flips which pixels are picked (seen: 2e-2 on 0.4% of pixels of a trained TE-0, while
    it agreed to 4e-6 on faces and on smooth inputs)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 3, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(input_size, input_size), mode="bilinear", align_corners=False)
    worst = float((reference(x).float() - onnx_runner(x).float()).abs().max())
    if not worst <= ONNX_TOLERANCE:
        raise ModelLoadError(
            f"the ONNX TRACER differs from the PyTorch one by {worst:.2e} "
            f"(tolerance {ONNX_TOLERANCE:g}); not writing the set"
        )
    return worst


def export_generator(
    generator: torch.nn.Module, resolution: int, attributes: Sequence[str], metadata: dict | None = None
) -> tuple[bytes, float]:
    """Trace, check against the eager model (also after a save/load round trip); return the
    TorchScript bytes and the worst difference seen."""
    from .models.torchscript import generator_to_bytes, load_generator_artifact, trace_generator

    c_dim = len(attributes)
    traced = trace_generator(generator, resolution, c_dim)
    meta = {"architecture": "stargan", "resolution": resolution, "attributes": list(attributes)}
    meta.update(metadata or {})
    data = generator_to_bytes(traced, meta)
    reloaded, _ = load_generator_artifact(data)
    worst = max(
        check_torchscript(generator, traced, resolution, c_dim),
        check_torchscript(generator, reloaded, resolution, c_dim, seed=1),
    )
    return data, worst


def tracer_state_bytes(tracer) -> bytes:
    """TRACER's state dict, floating tensors as float16 (half the size; the maps it computes
    differ from float32's by about 1e-3), as `torch.save` bytes."""
    import io

    from .models.tracer import half_state_dict

    buffer = io.BytesIO()
    torch.save(half_state_dict(tracer), buffer)
    return buffer.getvalue()


def export_saliency(tracer, metadata: dict | None = None) -> tuple[bytes, float]:
    """ONNX bytes of a PyTorch TRACER, checked against it through ONNX Runtime (CPU)."""
    from .models.tracer import export_onnx
    from .saliency import TorchSaliency, TracerSaliency

    data = export_onnx(tracer, metadata=metadata)
    worst = check_onnx(
        TorchSaliency(tracer), TracerSaliency(data, providers=["CPUExecutionProvider"]), tracer.input_size
    )
    return data, worst


def import_official(
    *,
    generator_checkpoint: str | Path,
    attributes: Sequence[str],
    resolution: int = 128,
    tracer_checkpoint: str | Path | None = None,
    tracer_variant: str | None = None,
    tracer_input_size: int | None = None,
    name: str,
    version: str = "1",
    dest: str | Path | None = None,
    overwrite: bool = False,
    torch_saliency: bool = True,
) -> Path:
    """Turn an official StarGAN `*-G.ckpt` (and optionally an official `TRACER-Efficient-N.pth`)
    into a model set at `dest` (default: the user models directory / name). `torch_saliency`
    also stores TRACER's weights for PyTorch (float16), so that a GPU machine without
    onnxruntime-gpu can run it on the GPU (`load_model_set`'s "auto" runtime)."""
    from .models.stargan import load_generator

    if not _NAME.match(name):
        raise InvalidInputError("name", f"{name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    attributes = [a.strip() for a in attributes if a.strip()]
    if not attributes or len(set(attributes)) != len(attributes):
        raise InvalidInputError("attributes", "name each attribute of the generator once, comma-separated")
    if resolution < 8 or resolution % 4:
        raise InvalidInputError("resolution", f"must be a multiple of 4, got {resolution}")
    dest = Path(dest) if dest is not None else user_models_dir() / name
    if dest.exists() and not overwrite:
        raise ModelSetWriteError(f"{dest} already exists; choose another name or pass --force to replace it")

    gpath = Path(generator_checkpoint)
    generator = load_generator(gpath, c_dim=len(attributes))  # strict: names the keys that do not fit
    arch = {"conv_dim": generator.conv_dim, "c_dim": generator.c_dim, "repeat_num": generator.repeat_num}
    gen_bytes, ts_diff = export_generator(generator, resolution, attributes)
    log.info("generator %s: %s, TorchScript matches (max diff %.1e)", gpath.name, arch, ts_diff)
    checks = {"torchscript_max_diff": ts_diff}
    sources = [{"file": gpath.name, "sha256": sha256_file(gpath)}]

    sal_bytes, sal_params, sal_source, sal_torch_bytes = None, None, None, None
    if tracer_checkpoint is not None:
        from .models.tracer import load_tracer

        tpath = Path(tracer_checkpoint)
        variant = tracer_variant or tracer_variant_from_name(tpath)
        if variant is None:
            raise InvalidInputError(
                "tracer_variant", f"cannot tell the TRACER variant from {tpath.name!r}; name it (TE-0..TE-7)"
            )
        tracer = load_tracer(tpath, variant, input_size=tracer_input_size)
        sal_bytes, onnx_diff = export_saliency(tracer, metadata={"faceshield.source": tpath.name})
        sal_params = {"variant": tracer.variant.name, "input_size": tracer.input_size}
        sal_source = {"file": tpath.name, "sha256": sha256_file(tpath)}
        sources.append(sal_source)
        checks["onnx_max_diff"] = onnx_diff
        log.info("TRACER %s: ONNX matches (max diff %.1e)", tracer.variant.name, onnx_diff)
        if torch_saliency:
            sal_torch_bytes = tracer_state_bytes(tracer)

    manifest = build_manifest(
        name=name,
        version=version,
        resolution=resolution,
        attributes=attributes,
        generator_bytes=gen_bytes,
        generator_parameters=arch,
        generator_source=sources[0],
        saliency_bytes=sal_bytes,
        saliency_parameters=sal_params,
        saliency_source=sal_source,
        produced_by={"tool": "faceshield models import", "sources": sources, "checks": checks},
        trained=True,
        description=f"official StarGAN {gpath.name}"
        + (f" + {Path(tracer_checkpoint).name}" if tracer_checkpoint else ""),
        saliency_torch_bytes=sal_torch_bytes,
    )
    files = {GENERATOR_FILE: gen_bytes}
    if sal_bytes is not None:
        files[SALIENCY_FILE] = sal_bytes
    if sal_torch_bytes is not None:
        files[SALIENCY_TORCH_FILE] = sal_torch_bytes
    return write_model_set(dest, manifest, files, overwrite=overwrite)
