"""The folder job's plan and its records: which files, where each result goes, what is done.

Shared by the local path (`batch_local`) and the Ray path (`batch_ray`); neither differs in what
it reads, writes or skips, only in where the work runs.

- **Inputs**: files, folders (recursively, `.png`, `.jpg`, `.jpeg` in any case, symbolic links
  followed) and list files (`--list FILE`: one path a line, relative to the list file's folder;
  blank lines and `#` comments skipped). Everything is checked before any work starts: an
  unreadable folder, a symbolic-link loop, a listed file that is missing, an output folder inside
  an input folder, two inputs that would write the same output: each is an error naming the
  path, and nothing is written.
- **Outputs**: `-o DIR` keeps the relative layout (a folder's files under their path inside it, a
  named file or a listed one under its name, or its path below the list's folder), as `.png`.
- **The results log** (JSONL, `DIR/faceshield-results.jsonl` unless `--log` names another): one
  line per image, appended and flushed once the image's output is in place, so a re-run skips
  every image with a line (resume; `--retry-failed` tries failed ones again). Lines that a kill
  cut short are dropped when the log is next opened.
- **Writes** are atomic (a hidden temporary file beside the target, then a rename); a temporary
  file left by a killed run is removed by the next run. Only outputs and the log are written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from faceshield.engine.errors import InvalidInputError

from .progress import BatchProgress

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LOG_NAME = "faceshield-results.jsonl"
TEMP_MARK = ".faceshield-tmp"


@dataclass(frozen=True)
class Item:
    """One image of the job: `source` to read, `output` (relative to the output folder) to write."""

    index: int
    source: str
    output: str


@dataclass
class Plan:
    items: list[Item]
    out_dir: Path
    log_path: Path
    done: dict[str, dict] = field(default_factory=dict)  # output -> its record, from the log

    @property
    def todo(self) -> list[Item]:
        return [i for i in self.items if i.output not in self.done]

    @property
    def failed_before(self) -> int:
        return sum(1 for i in self.items if self.done.get(i.output, {}).get("status") == "failed")


# -- discovery -----------------------------------------------------------------------------
def _walk(root: Path) -> list[Path]:
    """Image files under `root`, sorted, following links; loops and unreadable folders are errors."""
    found: list[Path] = []
    seen: dict[tuple[int, int], Path] = {}

    def visit(folder: Path, chain: tuple[tuple[int, int], ...]) -> None:
        try:
            st = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError:
            raise InvalidInputError("input", f"cannot read folder {folder}: permission denied") from None
        except OSError as exc:
            raise InvalidInputError("input", f"cannot read folder {folder}: {exc.strerror or exc}") from None
        key = (st.st_dev, st.st_ino)
        if key in chain:
            raise InvalidInputError("input", f"{folder} is a symbolic-link loop: it leads back to {seen[key]}")
        seen.setdefault(key, folder)
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                visit(path, (*chain, key))
            elif is_file and path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
            elif entry.is_symlink() and not path.exists():
                try:
                    path.stat()
                except OSError as exc:
                    if exc.errno == 40:  # ELOOP: a link to itself or around a cycle of links
                        raise InvalidInputError("input", f"{path} is a symbolic-link loop") from None

    visit(root, ())
    return found


def _read_list(list_file: Path) -> list[tuple[Path, str]]:
    try:
        lines = list_file.read_text().splitlines()
    except OSError as exc:
        raise InvalidInputError("list", f"cannot read the list file {list_file}: {exc.strerror or exc}") from None
    base = list_file.parent
    entries, missing = [], []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        path = Path(text) if Path(text).is_absolute() else base / text
        if not path.is_file():
            missing.append(text)
            continue
        try:
            rel = path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = path.name
        entries.append((path, rel))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InvalidInputError("list", f"{list_file} names {len(missing)} file(s) that do not exist: {shown}")
    return entries


def _png_name(rel: str) -> str:
    return str(Path(rel).with_suffix(".png").as_posix())


def discover(inputs: Iterable[str], list_file: str | None, out_dir: str) -> list[Item]:
    """Every input image with its output path, in a fixed order (see the module docstring)."""
    out = Path(out_dir).resolve()
    pairs: list[tuple[Path, str]] = []
    roots = [Path(p) for p in inputs]
    folders = [r for r in roots if r.is_dir()]
    for root in roots:
        if root.is_dir():
            real = root.resolve()
            if out == real or real in out.parents:
                raise InvalidInputError(
                    "output", f"the output folder {out_dir} lies inside the input folder {root}; choose one outside it"
                )
            prefix = Path(root.resolve().name) if len(folders) > 1 else Path()
            pairs += [(p, (prefix / p.relative_to(root)).as_posix()) for p in _walk(root)]
        elif root.is_file():
            pairs.append((root, root.name))
        else:
            raise InvalidInputError("input", f"{root} does not exist or is neither a file nor a folder")
    if list_file is not None:
        pairs += _read_list(Path(list_file))
    if not pairs:
        raise InvalidInputError("input", "no PNG or JPEG files found in the inputs")
    items: list[Item] = []
    claimed: dict[str, Path] = {}
    for source, rel in pairs:
        name = _png_name(rel)
        if name in claimed:
            raise InvalidInputError("input", f"{source} and {claimed[name]} would both be written to {name}")
        claimed[name] = source
        items.append(Item(len(items), str(source), name))
    return items


# -- the log -------------------------------------------------------------------------------
def read_log(path: Path) -> dict[str, dict]:
    """Records by output path; lines cut short by a kill are dropped (and the log rewritten without them)."""
    if not path.exists():
        return {}
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError("log", f"cannot read the results log {path}: {exc.strerror or exc}") from None
    records, good, bad = {}, [], 0
    for line in text.splitlines():
        try:
            record = json.loads(line)
            key = record["output"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        records[key] = record
        good.append(line)
    if bad or (text and not text.endswith("\n")):
        write_atomic(path, ("\n".join(good) + "\n" if good else "").encode())
    return records


def make_plan(
    inputs: Iterable[str], list_file: str | None, out_dir: str, log: str | None = None, retry_failed: bool = False
) -> Plan:
    items = discover(inputs, list_file, out_dir)
    out = Path(out_dir)
    log_path = Path(log) if log else out / LOG_NAME
    done = read_log(log_path)
    for key, record in list(done.items()):
        ok = record.get("status") != "failed"
        if (ok and not (out / key).is_file()) or (not ok and retry_failed):
            del done[key]  # its output went missing, or failures are to be tried again
    remove_stale_temps(out, items)
    return Plan(items, out, log_path, done)


# -- writing -------------------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a hidden temporary file beside it and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_MARK}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(out: Path, items: list[Item]) -> None:
    """Temporary files a killed run left beside the outputs (and the log) it was writing."""
    folders = {(out / i.output).parent for i in items} | {out}
    for folder in folders:
        if folder.is_dir():
            for p in folder.glob(f".*{TEMP_MARK}"):
                p.unlink(missing_ok=True)


class ResultLog:
    """Appends one JSON line per image, flushed and synced, after its output is in place."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def write_result(plan: Plan, log: ResultLog, record: dict, png: bytes | None) -> None:
    """The output (when there is one) atomically, then its log line: a kill between the two only
    means the image is protected again, identically, on the next run."""
    if png is not None:
        try:
            write_atomic(plan.out_dir / record["output"], png)
        except OSError as exc:
            raise InvalidInputError(
                "output", f"cannot write {plan.out_dir / record['output']}: {exc.strerror}"
            ) from None
    log.append(record)
    plan.done[record["output"]] = record


def write_batch(
    plan: Plan, log: ResultLog, results: Iterable[tuple[dict, bytes | None]], progress: BatchProgress
) -> int:
    """Each result of a finished batch written (as `write_result`) and counted on the progress
    bar, on every path alike; returns how many of them failed."""
    results = list(results)
    bad = 0
    for record, png in results:
        write_result(plan, log, record, png)
        bad += record["status"] == "failed"
    progress.advance(len(results), bad)
    return bad
