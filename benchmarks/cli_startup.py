"""How long the `faceshield` command takes to answer before it does any work: `--help`, a
subcommand's help, an argument error and `models list`, each in a fresh process, as a user
types them. Prints the figures and writes them, with the command, machine and date, to
benchmarks/results/cli-startup.md.

    python benchmarks/cli_startup.py [--repeats 7] [--out benchmarks/results/cli-startup.md]

Each command runs `--repeats` times after one untimed run (which warms the page cache); the
table gives the median and the range of wall-clock seconds, and whether PyTorch was imported
(read from `python -X importtime`). Run it on an idle machine, one job at a time: start-up
time scales with CPU contention, and the load average before and after is recorded to show it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (label, arguments after `faceshield`, expected exit status)
COMMANDS = [
    ("top-level help", ["--help"], 0),
    ("subcommand help", ["protect", "--help"], 0),
    ("subcommand help", ["evaluate", "--help"], 0),
    ("argument error", ["protect", "face.png"], 2),  # -o missing
    ("models list", ["models", "list"], 0),
]
TARGET_SECONDS = 1.0


def entry_point() -> list[str]:
    """The installed `faceshield` script run by this interpreter (its shebang may name another
    virtualenv's Python); `python -m faceshield.cli` where no script is installed."""
    script = Path(sys.executable).with_name("faceshield")
    return [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "faceshield.cli"]


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t, done.returncode


def imports_torch(argv: list[str], env: dict[str, str]) -> bool:
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return any(line.rsplit("|", 1)[-1].strip() == "torch" for line in done.stderr.splitlines())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli-startup.md"))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    base = entry_point()
    load_before = os.getloadavg()
    rows = []
    for label, words, expected in COMMANDS:
        argv = [*base, *words]
        run_once(argv, env)  # warm the page cache
        times = []
        for _ in range(args.repeats):
            seconds, code = run_once(argv, env)
            if code != expected:
                print(f"faceshield {' '.join(words)}: exit {code}, expected {expected}", file=sys.stderr)
                return 1
            times.append(seconds)
        torch = imports_torch(argv, env)
        rows.append((label, words, statistics.median(times), min(times), max(times), torch))
        print(f"{'faceshield ' + ' '.join(words):<32} median {statistics.median(times):.3f} s  torch: {torch}")
    load_after = os.getloadavg()
    lines = [
        "# `faceshield` start-up: help, argument errors, `models list`",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{shlex.join(['python', 'benchmarks/cli_startup.py', *sys.argv[1:]])}`",
        f"- machine: {machine()}",
        f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)}",
        f"- each command: a fresh process (`{shlex.join(Path(a).name for a in base)} ...`), {args.repeats} "
        "timed runs after one untimed, wall-clock seconds; target: under "
        f"{TARGET_SECONDS:.0f} s",
        "",
        "| what | command | median s | min s | max s | imports torch |",
        "|---|---|---:|---:|---:|---|",
    ]
    for label, words, med, lo, hi, torch in rows:
        lines.append(f"| {label} | `faceshield {' '.join(words)}` | {med:.3f} | {lo:.3f} | {hi:.3f} | {torch} |")
    lines.append("")
    text = "\n".join(lines)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
