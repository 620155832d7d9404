"""ONNX Runtime without its telemetry.

onnxruntime (1.31 on Linux) starts Microsoft's 1DS telemetry as it is imported: it writes a
device id and an event database under `$XDG_CACHE_HOME` (else `~/.cache`)
`/Microsoft/DeveloperTools/.onnxruntime/` and a session file `.ses` under `$TMPDIR`, and may
upload events. A service that handles biometric data writes nothing it was not asked to.
`disable_telemetry_events()`, called after the import, is too late for those files: the library
reads the variable `ORT_DISABLE_TELEMETRY` when it starts. So this module sets that variable
when it is imported (first thing `faceshield.engine` does), before onnxruntime can be, and
FaceShield imports onnxruntime only through `load`. An operator who sets the variable
explicitly keeps that choice.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"


def disable_telemetry() -> None:
    """Set ORT_DISABLE_TELEMETRY=1 for this process unless it is set or onnxruntime already runs."""
    if "onnxruntime" not in sys.modules:
        os.environ.setdefault(TELEMETRY_ENV, "1")


def load() -> ModuleType:
    """`import onnxruntime`, with telemetry off (see the module docstring)."""
    disable_telemetry()
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


disable_telemetry()
