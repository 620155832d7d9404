"""FaceShield's engine: union-saliency protection of face images against StarGAN edits.

Never imports grpc. The public names below are what the service, the CLI and callers use.
"""

# First: importing it turns ONNX Runtime's telemetry off before anything imports onnxruntime.
from . import onnx_runtime  # noqa: F401
from .attack.protect import ProtectionResult, Protector
from .config import METHODS, AttackConfig, Stages
from .errors import CheckpointMismatchError, FaceShieldError, InvalidInputError, ModelLoadError
from .metrics import InputMetrics, TargetMetrics, input_metrics, output_metrics, success_rate
from .models.labels import create_labels
from .models.stargan import Generator, load_generator
from .modelset import ModelSet
from .pipeline import FaceShieldEngine, Limits, ProtectOutcome, ProtectRequest

__all__ = [
    "METHODS",
    "AttackConfig",
    "CheckpointMismatchError",
    "FaceShieldEngine",
    "FaceShieldError",
    "Generator",
    "InputMetrics",
    "InvalidInputError",
    "Limits",
    "ModelLoadError",
    "ModelSet",
    "ProtectOutcome",
    "ProtectRequest",
    "ProtectionResult",
    "Protector",
    "Stages",
    "TargetMetrics",
    "create_labels",
    "input_metrics",
    "load_generator",
    "output_metrics",
    "success_rate",
]
