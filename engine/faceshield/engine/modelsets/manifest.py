"""A model set's manifest: what the set holds, each file's hash, and how it was made.

Format 2 (written now) lists the set's victims, each with its own kind, resolution and targets:

    {"format": "faceshield-model-set", "format_version": 2, "name": ..., "version": ...,
     "victims": [{"name": "stargan", "kind": "stargan", "resolution": 128,
                  "attributes": ["Black_Hair", ...], "file": "generator.pt",
                  "format": "torchscript", "architecture": "stargan", "parameters": {...},
                  "sha256": ..., "size_bytes": ..., "source": {...}}, ...],
     "saliency": {"file": "saliency.onnx", ...} | null, "saliency_torch": {...} | null,
     "produced_by": {...}, "trained": true, "description": "...", "metrics": {...}}

Format 1 (one StarGAN generator: top-level "generator", "resolution", "attributes") is still
read, as a set with one StarGAN victim named "stargan".
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..defaults import TARGET_SEPARATOR, VICTIM_KINDS
from ..errors import ModelLoadError

FORMAT = "faceshield-model-set"
FORMAT_VERSION = 2  # bump when a reader of the old format could misread the new one
MANIFEST_FILE = "manifest.json"
GENERATOR_FILE = "generator.pt"
SALIENCY_FILE = "saliency.onnx"
# TRACER's weights for PyTorch, beside its ONNX graph (optional): lets a GPU machine without
# onnxruntime-gpu run TRACER on the GPU instead of on ONNX Runtime's CPU provider.
SALIENCY_TORCH_FILE = "saliency.pt"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STARGAN_VICTIM = "stargan"  # the name format-1 sets give their one generator


@dataclass(frozen=True)
class ComponentManifest:
    """One model file of a set.

    file: name inside the set directory; format: "torchscript", "onnx" or "pytorch-state-dict";
    architecture: "stargan", "resnet", "unet", "torchscript" (a user's module) or "tracer";
    parameters: the architecture's constructor values (StarGAN conv_dim / c_dim / repeat_num;
    a translator's `TranslatorSpec`; TRACER variant / input_size); sha256 and size of the file;
    source: where the weights came from (a checkpoint's name and hash, or a training run).
    """

    file: str
    format: str
    architecture: str
    parameters: dict
    sha256: str
    size_bytes: int
    source: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VictimManifest(ComponentManifest):
    """A generator to protect against: its file, plus what the attack needs to know of it."""

    name: str = STARGAN_VICTIM
    kind: str = "stargan"
    resolution: int = 128
    attributes: list[str] = field(default_factory=list)
    description: str = ""  # what a person should know of it (shown beside its results)

    @property
    def targets(self) -> list[str]:
        return [self.name] if self.kind == "translator" else list(self.attributes)


@dataclass(frozen=True)
class ModelSetManifest:
    name: str
    version: str
    victims: list[VictimManifest]
    saliency: ComponentManifest | None
    produced_by: dict  # tool, versions, date, sources, checks
    trained: bool = True
    description: str = ""
    metrics: dict = field(default_factory=dict)
    saliency_torch: ComponentManifest | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    # -- views used by tools that show one set -------------------------------------------
    @property
    def generator(self) -> VictimManifest:
        """The first victim (a format-1 set's one StarGAN)."""
        return self.victims[0]

    @property
    def resolution(self) -> int:
        return self.victims[0].resolution

    @property
    def attributes(self) -> list[str]:
        """Every StarGAN victim's attribute names, first seen first."""
        out: list[str] = []
        for v in self.victims:
            if v.kind == "stargan":
                out += [a for a in v.attributes if a not in out]
        return out

    @property
    def components(self) -> list[ComponentManifest]:
        return [*self.victims, *(c for c in (self.saliency, self.saliency_torch) if c is not None)]

    def to_json(self) -> str:
        data = asdict(self)
        data["format_version"] = FORMAT_VERSION
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

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
            if version == 1:
                victims = [
                    _victim(
                        {
                            **data["generator"],
                            "name": STARGAN_VICTIM,
                            "kind": "stargan",
                            "resolution": data["resolution"],
                            "attributes": data["attributes"],
                        }
                    )
                ]
            else:
                if not isinstance(data["victims"], list):
                    raise TypeError("victims must be a list")
                victims = [_victim(v) for v in data["victims"]]
            optional = {
                k: None if data.get(k) is None else _component(data[k], k) for k in ("saliency", "saliency_torch")
            }
            manifest = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                victims=victims,
                produced_by=dict(data.get("produced_by") or {}),
                trained=bool(data.get("trained", True)),
                description=str(data.get("description", "")),
                metrics=dict(data.get("metrics") or {}),
                format=FORMAT,
                format_version=version,
                **optional,
            )
        except KeyError as exc:
            raise ModelLoadError(f"{where} lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{where} has a malformed field ({exc})") from None
        manifest.validate(where)
        return manifest

    def validate(self, where: str = "manifest") -> None:
        if not NAME_PATTERN.match(self.name):
            raise ModelLoadError(f"{where}: name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if not self.victims:
            raise ModelLoadError(f"{where}: a model set needs at least one victim generator")
        names = [v.name for v in self.victims]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ModelLoadError(f"{where}: victim names must be unique; named twice: {', '.join(twice)}")
        for v in self.victims:
            _validate_victim(v, where)
        if self.saliency_torch is not None and self.saliency is None:
            raise ModelLoadError(f"{where}: saliency_torch needs the saliency (ONNX) component beside it")
        files = [c.file for c in self.components]
        for comp in self.components:
            if Path(comp.file).name != comp.file or comp.file in ("", ".", "..", MANIFEST_FILE):
                raise ModelLoadError(f"{where}: file name {comp.file!r} must be a plain name inside the set")
        if len(set(files)) != len(files):
            raise ModelLoadError(f"{where}: two components name the same file")


def _validate_victim(v: VictimManifest, where: str) -> None:
    if not NAME_PATTERN.match(v.name) or TARGET_SEPARATOR in v.name:
        raise ModelLoadError(f"{where}: victim name {v.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if v.kind not in VICTIM_KINDS:
        raise ModelLoadError(f"{where}: victim {v.name!r} has unknown kind {v.kind!r} ({', '.join(VICTIM_KINDS)})")
    if v.resolution < 8 or v.resolution % 4:
        raise ModelLoadError(f"{where}: victim {v.name!r}: resolution must be a multiple of 4, got {v.resolution}")
    if v.kind in ("stargan", "styles"):
        if not v.attributes or len(set(v.attributes)) != len(v.attributes):
            raise ModelLoadError(f"{where}: attributes must be a non-empty list of distinct names")
        c_dim = v.parameters.get("c_dim" if v.kind == "stargan" else "styles")
        if c_dim is not None and int(c_dim) != len(v.attributes):
            raise ModelLoadError(f"{where}: victim {v.name!r} takes {c_dim} labels, not {len(v.attributes)} names")
    elif v.attributes:
        raise ModelLoadError(f"{where}: translator {v.name!r} takes no attributes")


def _component(data: dict, what: str) -> ComponentManifest:
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be an object")
    return ComponentManifest(**_component_fields(data, what))


def _component_fields(data: dict, what: str) -> dict:
    sha = str(data["sha256"]).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ValueError(f"{what}.sha256 is not a SHA-256 hex digest")
    return dict(
        file=str(data["file"]),
        format=str(data["format"]),
        architecture=str(data["architecture"]),
        parameters=dict(data.get("parameters") or {}),
        sha256=sha,
        size_bytes=int(data.get("size_bytes", -1)),
        source=dict(data.get("source") or {}),
    )


def _victim(data: dict) -> VictimManifest:
    if not isinstance(data, dict):
        raise TypeError("each victim must be an object")
    name = str(data["name"])
    attributes = data.get("attributes") or []
    if not isinstance(attributes, list):
        raise TypeError(f"victim {name}: attributes must be a list")
    return VictimManifest(
        **_component_fields(data, f"victim {name}"),
        name=name,
        kind=str(data["kind"]),
        resolution=int(data["resolution"]),
        attributes=[str(a) for a in attributes],
        description=str(data.get("description", "")),
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class VictimFile:
    """A victim to write into a new set: its artifact's bytes and what the manifest says of it."""

    name: str
    kind: str
    resolution: int
    data: bytes
    architecture: str
    parameters: dict
    attributes: Sequence[str] = ()
    source: dict = field(default_factory=dict)
    file: str = ""
    description: str = ""

    def manifest(self, file: str) -> VictimManifest:
        return VictimManifest(
            file=file,
            format="torchscript",
            architecture=self.architecture,
            parameters=dict(self.parameters),
            sha256=sha256_bytes(self.data),
            size_bytes=len(self.data),
            source=dict(self.source),
            name=self.name,
            kind=self.kind,
            resolution=int(self.resolution),
            attributes=list(self.attributes),
            description=self.description,
        )


def victim_file_name(index: int, victim: VictimFile) -> str:
    """generator.pt for the first victim (as format 1 named it), victim-NAME.pt for the others."""
    return victim.file or (GENERATOR_FILE if index == 0 else f"victim-{victim.name}.pt")


def build_manifest(
    *,
    name: str,
    version: str,
    produced_by: dict,
    victims: Sequence[VictimFile] = (),
    resolution: int | None = None,
    attributes: Sequence[str] = (),
    generator_bytes: bytes | None = None,
    generator_parameters: dict | None = None,
    generator_source: dict | None = None,
    saliency_bytes: bytes | None = None,
    saliency_parameters: dict | None = None,
    saliency_source: dict | None = None,
    trained: bool = True,
    description: str = "",
    metrics: dict | None = None,
    saliency_torch_bytes: bytes | None = None,
) -> ModelSetManifest:
    """A manifest for the given files, hashes computed here. `victims` lists every generator;
    `generator_bytes` with `resolution` and `attributes` is the short form of one StarGAN."""
    victims = list(victims)
    if generator_bytes is not None:
        victims.insert(
            0,
            VictimFile(
                STARGAN_VICTIM,
                "stargan",
                int(resolution or 0),
                generator_bytes,
                "stargan",
                dict(generator_parameters or {}),
                list(attributes),
                dict(generator_source or {}),
            ),
        )
    entries = [v.manifest(victim_file_name(i, v)) for i, v in enumerate(victims)]

    def component(file: str, fmt: str, data: bytes | None) -> ComponentManifest | None:
        if data is None:
            return None
        params, source = dict(saliency_parameters or {}), dict(saliency_source or {})
        return ComponentManifest(file, fmt, "tracer", params, sha256_bytes(data), len(data), source)

    import torch  # here, not at the top: listing and reading sets needs no PyTorch

    info = {
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "faceshield": _faceshield_version(),
        "torch": torch.__version__,
    }
    info.update(produced_by)
    m = ModelSetManifest(
        name=name,
        version=version,
        victims=entries,
        saliency=component(SALIENCY_FILE, "onnx", saliency_bytes),
        produced_by=info,
        trained=trained,
        description=description,
        metrics=dict(metrics or {}),
        saliency_torch=component(SALIENCY_TORCH_FILE, "pytorch-state-dict", saliency_torch_bytes),
    )
    m.validate("new manifest")
    return m


def _faceshield_version() -> str:
    try:
        from importlib.metadata import version

        return version("faceshield")
    except Exception:  # running from a bare checkout
        return "unknown"
