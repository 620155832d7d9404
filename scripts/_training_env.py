"""Let the demo training scripts run on a machine that has only torch and numpy.

Training needs neither ONNX nor Pillow, but importing the engine does: `models.tracer` imports
`onnx` for its exporter and `io.images` imports Pillow for its codecs. Where one is missing, a
placeholder module takes its name so that the import succeeds; any use of it raises, naming the
package to install. The export stage checks `missing()` and defers itself with a clear message.
"""

from __future__ import annotations

import argparse
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


def training_parser(description: str, out_help: str) -> argparse.ArgumentParser:
    """The options both training scripts share (device, time budget, seed, workers, output)."""
    import torch

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seconds", type=float, default=150.0, help="wall-time budget for the training loop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes rendering the faces (default: all cores)")
    p.add_argument("--log-every", type=int, default=100, help="iterations between progress lines")
    p.add_argument("--out", required=True, help=out_help)
    return p


def add_settings_arguments(p: argparse.ArgumentParser, settings_cls, prefix: str = "") -> None:
    """One option per field of the settings dataclass, `--{prefix}field-name`, default None (so
    that `settings_from_args` keeps the dataclass default); booleans get `--x/--no-x`."""
    for name, field in settings_cls.__dataclass_fields__.items():
        flag, dest = f"--{prefix}{name.replace('_', '-')}", prefix.replace("-", "_") + name
        if isinstance(field.default, bool):
            p.add_argument(
                flag, dest=dest, default=None, action=argparse.BooleanOptionalAction, help=f"default {field.default}"
            )
        else:
            p.add_argument(flag, dest=dest, type=type(field.default), default=None, help=f"default {field.default}")


def settings_from_args(args: argparse.Namespace, settings_cls):
    """The settings dataclass with every option the command line set (unprefixed names)."""
    return settings_cls(
        **{k: v for k, v in vars(args).items() if k in settings_cls.__dataclass_fields__ and v is not None}
    )


def save_atomically(state_dict: dict, out: str | Path) -> Path:
    """torch.save to a temporary name beside `out`, then rename: never a half-written file."""
    import torch

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(state_dict, tmp)
    tmp.replace(out)
    return out
