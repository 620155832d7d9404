"""How the engine runs its models on a device: precision, compilation, memory, OOM splits.

Nothing here changes process-wide state when constructed: the TF32 switches PyTorch keeps per
process are set around each engine call (`Execution.backends()`) and restored after it, so two
engines of different precisions in one process do not leak settings into each other.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from .defaults import PRECISIONS
from .errors import InvalidInputError

log = logging.getLogger(__name__)
T = TypeVar("T")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), read from the flags the
    kernel reports: detected, never assumed. Elsewhere bf16 autocast is emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def choose_precision(name: str, device: torch.device) -> str:
    """ "auto": bf16 autocast for the gradient steps on a CUDA device that supports it and on a
    CPU with native bf16 (1.7-1.9x faster there: benchmarks/results/cpu-speed.md), else fp32.
    Only the gradient steps change: every check, metric and verdict runs the victims in float32
    on the delivered 8-bit image (`Protector.generate`)."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if name not in PRECISIONS:
        raise InvalidInputError("precision", f"unknown precision {name!r}; choose auto, {', '.join(PRECISIONS)}")
    return name


@dataclass(frozen=True)
class Execution:
    """device; precision ("fp32", "tf32", "bf16"); compile mode ("none" or a torch.compile mode)."""

    device: torch.device
    precision: str
    compile: str = "none"

    @classmethod
    def choose(cls, device: str | torch.device, precision: str = "auto", compile: str = "none") -> Execution:
        d = torch.device(device)
        return cls(d, choose_precision(precision, d), compile)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    @contextlib.contextmanager
    def backends(self) -> Iterator[None]:
        """TF32 for every precision but strict fp32 on CUDA (bf16 autocast keeps fp32
        accumulation), for the duration of one call."""
        if self.device.type != "cuda":
            yield
            return
        before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        allow = self.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before

    def free_cache(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def split_on_oom(
    run: Callable[[Sequence[int]], T],
    items: Sequence[int],
    join: Callable[[T, T], T],
    execution: Execution,
    on_split: Callable[[int], None] | None = None,
) -> T:
    """`run(items)`; when the device runs out of memory, run each half on its own and `join` them.

    Results do not depend on batch composition, so splitting changes no answer, and no item is
    lost: only a single item that does not fit fails (as an OutOfMemoryError)."""
    try:
        return run(items)
    except torch.OutOfMemoryError:
        if len(items) == 1:
            raise
        execution.free_cache()
        half = len(items) // 2
        log.warning("out of device memory at batch %d; splitting into %d + %d", len(items), half, len(items) - half)
        if on_split is not None:
            on_split(len(items))
        a = split_on_oom(run, items[:half], join, execution, on_split)
        return join(a, split_on_oom(run, items[half:], join, execution, on_split))
