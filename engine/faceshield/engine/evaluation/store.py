"""Append-only results of an evaluation run, one JSON object a line.

Each engine call appends all its records in one write, then flushes and syncs, so an interrupt
leaves whole calls behind, at worst one truncated last line, which `load` drops (and cuts off
the file, so the next append starts on a fresh line). A record is keyed by
(row, protocol, sample, target); when a key appears twice the later line wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

Key = tuple[str, str, str, str]
FORMAT_VERSION = 1


def record_key(record: dict) -> Key:
    return (record["row"], record["protocol"], record["sample"], record["target"])


class ResultStore:
    """Records of one run, on disk at `path` (JSONL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[Key, dict] = {}

    def load(self) -> dict[Key, dict]:
        self.records = {}
        if not self.path.exists():
            return self.records
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("dropping a truncated last line of %s (an interrupted write)", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for number, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.records[record_key(record)] = record
            except (ValueError, KeyError, TypeError):
                log.warning("skipping unreadable line %d of %s", number, self.path)
        return self.records

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        text = "".join(json.dumps(_finite(r), separators=(",", ":"), allow_nan=False) + "\n" for r in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        for r in records:
            self.records[record_key(r)] = r


def _finite(value):
    """JSON has no infinity: a non-finite float (PSNR of an untouched image) is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
