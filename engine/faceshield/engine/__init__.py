"""FaceShield's engine: union-saliency protection of face images against face-editing GANs.

Never imports grpc. The public names below are what the service, the CLI and callers use.

They are resolved on first use (PEP 562): `import faceshield.engine.errors` or
`from faceshield.engine import METHODS` costs milliseconds, while the names that need PyTorch
import it only when asked for. The command line relies on this to answer `--help` and
argument errors without loading torch (about 2 s on the 2-core box).
"""

from __future__ import annotations

# First: importing it turns ONNX Runtime's telemetry off before anything imports onnxruntime.
from . import onnx_runtime  # noqa: F401
from .lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "ProtectionResult": ".attack.protect",
    "Protector": ".attack.protect",
    "METHODS": ".config",
    "AttackConfig": ".config",
    "Stages": ".config",
    "Policy": ".config",
    "FIXED": ".config",
    "ENSURE": ".config",
    "CheckpointMismatchError": ".errors",
    "FaceShieldError": ".errors",
    "InvalidInputError": ".errors",
    "ModelLoadError": ".errors",
    "InputMetrics": ".metrics",
    "TargetMetrics": ".metrics",
    "input_metrics": ".metrics",
    "output_metrics": ".metrics",
    "success_rate": ".metrics",
    "create_labels": ".models.labels",
    "Generator": ".models.stargan",
    "load_generator": ".models.stargan",
    "Victim": ".models.victims",
    "ModelSet": ".modelset",
    "FaceShieldEngine": ".pipeline",
    "Limits": ".pipeline",
    "ProtectOutcome": ".pipeline",
    "Verdict": ".pipeline",
    "ProtectRequest": ".requests",
    "CheckedRequest": ".requests",
}

__all__ = list(_EXPORTS)


_resolve, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):  # a def, not the bare function, so type checkers see a lazy module
    return _resolve(name)
