"""Let the demo training scripts run on a machine that has only torch and numpy.

Training needs neither ONNX nor Pillow, but importing the engine does: `models.tracer` imports
`onnx` for its exporter and `io.images` imports Pillow for its codecs. Where one is missing, a
placeholder module takes its name so that the import succeeds; any use of it raises, naming the
package to install. The export stage checks `missing()` and defers itself with a clear message.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

log = logging.getLogger("training_env")
OPTIONAL = ("onnx", "onnxruntime", "PIL")
_stubbed: list[str] = []


class _Placeholder:
    """Stands for any name inside a missing package; using it raises."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise ModuleNotFoundError(f"{self._name.split('.')[0]} is not installed here (needed for {self._name})")


class _Missing(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(f"{self.__name__}.{attr}")


def prepare() -> None:
    """Put the repository's engine on sys.path and stand in for missing optional packages."""
    engine = Path(__file__).resolve().parents[1] / "engine"
    if str(engine) not in sys.path:
        sys.path.insert(0, str(engine))
    for name in OPTIONAL:
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        stub = _Missing(name)
        stub.__path__ = []  # a package, so that `from PIL import Image` reaches __getattr__
        sys.modules[name] = stub
        if name == "PIL":
            for sub in ("Image", "ImageFilter", "ImageDraw", "ImageFont"):
                sys.modules[f"PIL.{sub}"] = _Missing(f"PIL.{sub}")
        _stubbed.append(name)
        log.warning("%s is not installed: training works, exporting needs it", name)


def missing() -> list[str]:
    """The optional packages replaced by placeholders."""
    return list(_stubbed)
