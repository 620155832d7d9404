"""Package namespaces whose public names resolve on first use (PEP 562).

`faceshield.engine`, its `evaluation` and `modelsets` packages name their public API up front but
import the submodule behind a name only when it is asked for, so that the command line answers
`--help` or `models list` without importing PyTorch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for PACKAGE, where EXPORTS maps each public name to the
    (relative) module that defines it; a name is imported once, then kept in the namespace."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
