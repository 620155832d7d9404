"""Progress on stderr while a protection runs: the stage and step k/K, one line redrawn.

Only when stderr is a terminal (a pipe or a log file gets nothing), so `--json` on stdout stays
clean and scripted runs stay quiet.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StepProgress:
    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.t0 = time.monotonic()
        self._width = 0

    @classmethod
    def for_stderr(cls) -> StepProgress:
        return cls(sys.stderr if sys.stderr.isatty() else None)

    def _show(self, text: str) -> None:
        if self.stream is None:
            return
        line = f"{text}  [{time.monotonic() - self.t0:.0f} s]"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def stage(self, name: str) -> None:
        self._show(name + " ...")

    def step(self, stage: str, done: int, total: int) -> None:
        self._show(f"{stage}: step {done}/{total}")

    def done(self) -> None:
        if self.stream is not None and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


class BatchProgress(StepProgress):
    """The folder job's bar: images done of all, failures, rate and ETA, one line redrawn."""

    WIDTH = 24

    def __init__(self, stream: TextIO | None, total: int, skipped: int = 0):
        super().__init__(stream)
        self.total, self.skipped, self.done_count, self.failed = total, skipped, 0, 0

    @classmethod
    def for_stderr(cls, total: int = 0, skipped: int = 0) -> BatchProgress:
        return cls(sys.stderr if sys.stderr.isatty() else None, total, skipped)

    def advance(self, images: int = 1, failed: int = 0) -> None:
        self.done_count += images
        self.failed += failed
        self._show(self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = self.done_count / elapsed
        left = self.total - self.done_count
        filled = round(self.WIDTH * self.done_count / max(self.total, 1))
        eta = _duration(left / rate) if rate > 0 else "?"
        bad = f", {self.failed} failed" if self.failed else ""
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done_count}/{self.total} images{bad}, "
            f"{rate:.2f} images/s, ETA {eta}"
        )

    def _show(self, text: str) -> None:  # no elapsed-seconds suffix: the line has rate and ETA
        if self.stream is None:
            return
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
