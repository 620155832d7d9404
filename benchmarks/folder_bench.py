"""Images per second of the folder job against one `faceshield protect` call per image, on this
machine. Prints the figures and writes them, with the command, machine and date, to
benchmarks/results/folder-cpu.md (or --out).

    python benchmarks/folder_bench.py [--images 12] [--models demo] [--device cpu] [-- EXTRA PROTECT ARGS]

The images are real photos (astronaut, camera, grace_hopper, the pasted group photo), cropped
and mirrored to --images distinct 512 x 512 files, so every run detects faces. Three ways:

1. `faceshield protect IMG -o OUT` once per image, each a fresh process (what a shell loop
   does): start-up, model load and the detector's cascades paid per image;
2. the folder job, `--batch 1`: one process, images one at a time through the engine;
3. the folder job, `--batch 8` (the default): images batched through the engine, as the service
   batches them.

Protection defaults to `--models demo --policy fixed` (union-saliency, 10 steps, the demo set
alone) so that the one-process-per-image row stays short on a 2-core CPU; pass other protect
options after `--`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cli_startup import entry_point, machine  # noqa: E402

from tests.photos import group_photo, photo  # noqa: E402


def make_images(folder: Path, count: int) -> list[Path]:
    sources = [photo("astronaut"), photo("camera"), photo("grace_hopper")[:512], group_photo()[0][:, 104:616]]
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        shift = (i // len(sources)) * 24
        h, w = image.shape[:2]
        side = min(h, w, 512)
        crop = np.ascontiguousarray(image[:side, min(shift, w - side) : min(shift, w - side) + side])
        if (i // len(sources)) % 2:
            crop = crop[:, ::-1]
        p = folder / f"photo{i:03d}.png"
        Image.fromarray(np.ascontiguousarray(crop)).resize((512, 512)).save(p)
        paths.append(p)
    return paths


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--models", default="demo", help="a model set, or 'default' for the default models")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "folder-cpu.md"))
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 8], help="folder-job batch sizes to time")
    ap.add_argument("--no-single", action="store_true", help="skip the one-process-per-image row (the slowest)")
    ap.add_argument("extra", nargs="*", help="protect options (default: --policy fixed)")
    args = ap.parse_args()
    extra = args.extra or ["--policy", "fixed"]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    models = [] if args.models == "default" else ["--models", args.models]  # default: the published victims
    base = [*entry_point(), "protect", *models, "--device", args.device, *extra]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="faceshield-bench-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        images = make_images(src, args.images)
        if not args.no_single:
            seconds = sum(timed([*base, str(p), "-o", str(Path(tmp) / "single" / p.name)], env) for p in images)
            rows.append(("one `faceshield protect` process per image", seconds))
            print(f"one process per image: {args.images / seconds:.3f} images/s")
        for batch in args.batches:
            seconds = timed([*base, str(src), "-o", str(Path(tmp) / f"batch{batch}"), "--batch", str(batch)], env)
            rows.append((f"folder job, one process, `--batch {batch}`", seconds))
            print(f"folder job --batch {batch}: {args.images / seconds:.3f} images/s")
    load_after = os.getloadavg()
    first = rows[0][1]
    lines = [
        "# The folder job against one `faceshield protect` per image",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{shlex.join(['python', 'benchmarks/folder_bench.py', *sys.argv[1:]])}`",
        f"- machine: {machine()}, device {args.device}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}",
        f"- load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)}",
        f"- {args.images} real photos, 512 x 512, faces found by the detector; protect options: "
        f"`--models {args.models} {shlex.join(extra)}`; wall-clock seconds, start-up and model load included",
        "",
        "| how | seconds | images/s | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for label, seconds in rows:
        lines.append(f"| {label} | {seconds:.1f} | {args.images / seconds:.3f} | {first / seconds:.2f}x |")
    lines.append("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
