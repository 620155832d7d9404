"""Python SDK of the FaceShield gRPC service (grpcio + protobuf + numpy; no torch).

    from faceshield.client import FaceShieldClient

    with FaceShieldClient("localhost:50051", token="...") as client:
        result = client.protect("face.png", method="union-saliency", targets=["Male"])
        print(result.input_metrics["psnr"], [t.success for t in result.targets])
        result.save("face-protected.png")

`AsyncFaceShieldClient` is the asyncio twin. Failures raise subclasses of `FaceShieldError`
carrying the status code and the server's details (field violations, retry delay).
"""

from ._common import DEFAULT_TIMEOUT, RetryPolicy, evaluate_request, protect_request
from .aio import AsyncFaceShieldClient
from .errors import (
    CancelledError,
    DeadlineExceededError,
    FaceShieldError,
    FieldViolation,
    InputError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    from_rpc_error,
    from_status,
)
from .policy import PROCESSINGS, Policy
from .results import EditIdentity, EvaluateResult, ModelInfo, ProtectResult, StreamResult, TargetResult, Verdict
from .sync import FaceShieldClient

__all__ = [
    "AsyncFaceShieldClient",
    "CancelledError",
    "DEFAULT_TIMEOUT",
    "DeadlineExceededError",
    "EditIdentity",
    "EvaluateResult",
    "FaceShieldClient",
    "FaceShieldError",
    "FieldViolation",
    "InputError",
    "InternalError",
    "InvalidArgumentError",
    "ModelInfo",
    "NotFoundError",
    "OverloadedError",
    "PROCESSINGS",
    "PermissionDeniedError",
    "Policy",
    "ProtectResult",
    "RetryPolicy",
    "StreamResult",
    "TargetResult",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "Verdict",
    "evaluate_request",
    "from_rpc_error",
    "from_status",
    "protect_request",
]
