"""FaceShield's engine: union-saliency protection of face images against face-editing GANs.

Never imports grpc. The public names below are what the service, the CLI and callers use.
"""

# First: importing it turns ONNX Runtime's telemetry off before anything imports onnxruntime.
from . import onnx_runtime  # noqa: F401
from .attack.protect import ProtectionResult, Protector
from .config import ENSURE, FIXED, METHODS, AttackConfig, Policy, Stages
from .errors import CheckpointMismatchError, FaceShieldError, InvalidInputError, ModelLoadError
from .metrics import InputMetrics, TargetMetrics, input_metrics, output_metrics, success_rate
from .models.labels import create_labels
from .models.stargan import Generator, load_generator
from .models.victims import Victim
from .modelset import ModelSet
from .pipeline import FaceShieldEngine, Limits, ProtectOutcome, Verdict
from .requests import CheckedRequest, ProtectRequest

__all__ = [
    "ENSURE",
    "FIXED",
    "METHODS",
    "CheckedRequest",
    "Policy",
    "Verdict",
    "Victim",
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
