"""Type-check FaceShield: the SDK strictly, the rest against a baseline of known errors that may only shrink.

    python scripts/check_types.py                   # exit 1 on an error not in the baseline, or any in the SDK
    python scripts/check_types.py --update          # rewrite the baseline after fixing errors (never grows it)
    python scripts/check_types.py --update --allow-growth   # accept new errors too (say why in the commit)

It runs mypy over the files that pyproject.toml's [tool.mypy] names and compares its errors with
scripts/mypy-baseline.txt. A baseline entry is one error, `path: [code] message`, without its line
number, so that editing lines above an error keeps it matched; identical entries count (two such
errors in a file need two lines). Fixed entries are reported, and `--update` drops them.

The SDK (faceshield.client, checked strictly: see pyproject.toml) has no baseline: any error
there fails. The output depends on the installed mypy, torch and numpy: run it in the
development environment (`make setup`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scripts" / "mypy-baseline.txt"
STRICT = ("clients/faceshield/client/",)  # the [[tool.mypy.overrides]] checked strictly: no baseline
MYPY_FLAGS = [
    # one error per line, in the form that `parse` reads, whatever the config says about display
    "--no-pretty",
    "--no-color-output",
    "--no-error-summary",
    "--show-error-codes",
    "--hide-error-code-links",
    "--hide-column-numbers",
    "--hide-error-end",
    "--hide-absolute-path",
]
HEADER = """\
# Known mypy errors outside the SDK, one per line: `path: [code] message` (no line numbers).
# scripts/check_types.py fails on an error not listed here; fix errors and shrink this file
# with `python scripts/check_types.py --update`. Never add lines by hand.
"""

_LINE = re.compile(
    r"^(?P<path>[^:\n]+?):(?P<line>\d+)(?::\d+)?: error: (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)
_LINE_REFERENCE = re.compile(r"\bline \d+\b")  # "already defined on line 12": moves with edits


@dataclass(frozen=True)
class MypyError:
    path: str
    line: int
    code: str
    message: str

    @property
    def key(self) -> str:
        """The baseline entry: where and what, without line numbers."""
        message = _LINE_REFERENCE.sub("line N", self.message)
        return f"{self.path}: [{self.code}] {message}"

    @property
    def strict(self) -> bool:
        return self.path.startswith(STRICT)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.code}] {self.message}"


def parse(output: str) -> list[MypyError]:
    """The errors in mypy's output (notes and summary lines left out)."""
    errors = []
    for raw in output.splitlines():
        match = _LINE.match(raw.strip())
        if match:
            path = match["path"].replace("\\", "/").removeprefix("./")
            errors.append(MypyError(path, int(match["line"]), match["code"] or "misc", match["message"]))
    return errors


def read_baseline(text: str) -> Counter[str]:
    return Counter(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def format_baseline(entries: Counter[str]) -> str:
    return HEADER + "".join(f"{key}\n" for key in sorted(entries.elements()))


@dataclass(frozen=True)
class Comparison:
    strict: list[MypyError]  # errors in the strict SDK: always a failure
    new: list[MypyError]  # errors beyond what the baseline lists: a failure
    fixed: Counter[str]  # baseline entries no longer reported
    current: Counter[str]  # what the baseline would be now (strict errors left out)

    @property
    def ok(self) -> bool:
        return not self.strict and not self.new


def compare(errors: Iterable[MypyError], baseline: Counter[str]) -> Comparison:
    errors = list(errors)
    strict = [e for e in errors if e.strict]
    rest = [e for e in errors if not e.strict]
    current = Counter(e.key for e in rest)
    # Of several errors with one key, the last ones (by line) are the new ones: a guess, but
    # only what is printed depends on it.
    allowed = Counter(baseline)
    new = []
    for error in sorted(rest, key=lambda e: (e.path, e.line)):
        if allowed[error.key] > 0:
            allowed[error.key] -= 1
        else:
            new.append(error)
    return Comparison(strict, new, baseline - current, current)


def report(result: Comparison) -> list[str]:
    lines = []
    if result.strict:
        lines.append(f"{len(result.strict)} error(s) in the strictly checked SDK (no baseline there; fix them):")
        lines += [f"  {e}" for e in result.strict]
    if result.new:
        lines.append(f"{len(result.new)} error(s) not in {BASELINE.relative_to(ROOT)} (fix them):")
        lines += [f"  {e}" for e in result.new]
    fixed = sum(result.fixed.values())
    if fixed:
        entries = "entry" if fixed == 1 else "entries"
        lines.append(
            f"{fixed} baseline {entries} fixed: shrink the baseline with `python scripts/check_types.py --update`"
        )
        lines += [f"  {key}" + (f" (x{n})" if n > 1 else "") for key, n in sorted(result.fixed.items())]
    total = sum(result.current.values())
    lines.append(f"mypy: {len(result.strict)} SDK error(s), {total} elsewhere ({len(result.new)} new)")
    return lines


def run_mypy() -> str:
    cmd = [sys.executable, "-m", "mypy", *MYPY_FLAGS]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not parse(proc.stdout)):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"mypy failed to run (exit {proc.returncode}): {' '.join(cmd)}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite the baseline with the current errors")
    parser.add_argument("--allow-growth", action="store_true", help="with --update: accept errors not in the baseline")
    args = parser.parse_args(argv)
    if args.allow_growth and not args.update:
        parser.error("--allow-growth goes with --update")

    baseline = read_baseline(BASELINE.read_text()) if BASELINE.exists() else Counter()
    result = compare(parse(run_mypy()), baseline)
    print("\n".join(report(result)))
    if args.update:
        if result.new and not args.allow_growth:
            print(f"not updating {BASELINE.relative_to(ROOT)}: it would grow (fix the new errors, or --allow-growth)")
            return 1
        if result.current != baseline:
            BASELINE.write_text(format_baseline(result.current))
            print(f"wrote {BASELINE.relative_to(ROOT)}: {sum(result.current.values())} entries")
        return 1 if result.strict else 0
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
