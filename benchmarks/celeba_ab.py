"""Side by side, on the same CelebA faces: runs of `identity_celeba.py` that differ in one setting
(precision, the policy's margin, a transfer stage), so that "at equal protection" is a measured
claim, not a hope.

    python benchmarks/celeba_ab.py bf16=run-a.jsonl fp32=run-b.jsonl --out benchmarks/results/x.md \
        --title "..." --command "..." [--command "..."]

Only faces every run holds are compared (paired). Per run: the verdict's protected share, the
share of deepfakes that fail dlib's face check (plain, after JPEG q75, after a 0.5x resize), the
photos kept, mean PSNR, steps and seconds per face; then the faces on which the verdicts differ.
Intervals: 95% Wilson (`evaluation.stats`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path


def load(path: Path, method: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["face"]: r for r in rows if r["method"].startswith(method)}


def pct(k: int, n: int) -> str:
    from faceshield.engine.evaluation.stats import wilson

    e = wilson(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.1f}% [{100 * e.low:.0f}, {100 * e.high:.0f}] ({k}/{n})"


def row(label: str, rs: list[dict]) -> str:
    live = [e for r in rs for e in r["edits"] if e["clean"] is not None and e["clean"] < 0.6]
    fails = sum(e["protected"] >= 0.6 for e in live)
    jpeg = sum(e["after"].get("jpeg75", 0) >= 0.6 for e in live)
    down = sum(e["after"].get("downscale2", 0) >= 0.6 for e in live)
    measured = [r for r in rs if all(k is not None for k in r["kept"])]
    kept = sum(all(k < 0.3 for k in r["kept"]) for r in measured)
    return (
        f"| {label} | {len(rs)} | {pct(sum(r['protected'] for r in rs), len(rs))} | {pct(fails, len(live))} "
        f"| {pct(jpeg, len(live))} | {pct(down, len(live))} | {pct(kept, len(measured))} "
        f"| {statistics.mean(r['psnr'] for r in rs):.2f} | {statistics.mean(r['steps'] for r in rs):.1f} "
        f"| {statistics.mean(r['seconds'] for r in rs):.1f} | {statistics.median(r['seconds'] for r in rs):.1f} |"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=JSONL")
    p.add_argument("--method", default="identity", help="the method records to compare (prefix of its name)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--command", action="append", default=[], help="how each run was made (one line each)")
    p.add_argument("--machine", default="", help="where the runs were made (benchmark figures name their box)")
    args = p.parse_args()

    runs = {}
    for spec in args.runs:
        label, _, path = spec.partition("=")
        runs[label] = load(Path(path), args.method)
    faces = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not faces:
        raise SystemExit("no face is in every run")
    lines = [f"# {args.title}", "", f"- compared {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {args.machine}"]
    lines += [f"- `{c}`" for c in args.command]
    lines += [
        f"- the same {len(faces)} CelebA faces in every run (paired); judge: dlib, an edit fails at >= 0.6 from the "
        "person, among edits whose clean edit still matches; a photo is kept at < 0.3; intervals 95% Wilson",
        "",
        "| run | faces | protected (verdict) | deepfakes that fail the face check | after JPEG q75 | after 0.5x resize "
        "| photos kept | mean PSNR (dB) | mean steps | mean s/face | median s/face |",
        "|---|---:|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    lines += [row(label, [rs[f] for f in faces]) for label, rs in runs.items()]
    labels = list(runs)
    first = runs[labels[0]]
    differ = [(f, {k: runs[k][f]["protected"] for k in labels}) for f in faces]
    differ = [(f, v) for f, v in differ if len(set(v.values())) > 1]
    lines += ["", f"Faces whose verdict differs between the runs: {len(differ)} of {len(faces)}"]
    lines += [
        f"- {f}: " + ", ".join(f"{k} {'protected' if v[k] else 'not protected'}" for k in labels) for f, v in differ
    ]
    for label in labels[1:]:
        ratio = statistics.mean(first[f]["seconds"] for f in faces) / statistics.mean(
            runs[label][f]["seconds"] for f in faces
        )
        lines.append(f"- mean time per face, {labels[0]} / {label}: {ratio:.2f}x")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
