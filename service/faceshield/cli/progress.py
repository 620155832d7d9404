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
