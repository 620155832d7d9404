"""Do paper-tables records made in float32 agree with those made in bf16 on the same faces?

    python benchmarks/paper_tables_precision.py \
        --reference benchmarks/results/paper-tables-celeba-styles.jsonl \
        --rerun benchmarks/results/paper-tables-celeba-styles-fp32-rerun.jsonl \
        --out benchmarks/results/paper-tables-celeba-styles-precision.md

`paper_tables_celeba.py` takes the product's `--precision auto`: bf16 autocast for the gradient
steps on a CPU that computes bf16 natively, float32 elsewhere. When one table's faces were run on
boxes of both kinds, a few of the earlier faces are run again on the other kind (`--rerun`) and
compared here (face, row) by (face, row) with the reference records: the photo's PSNR, and each
edit's verdict by Ruiz's rule (output MSE > 0.05) and by the face check (distance >= 0.6, among
edits whose clean edit passes). Numbers only; reads the two JSONL files, writes one report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path

# The same thresholds and the same reading of a record (one entry per edit) as the tables' own report.
from celeba_report import FAILS, RUIZ_MSE, has_identity, per_edit  # beside this script


def _load(path: Path) -> dict[tuple[str, str], dict]:
    return {(r["face"], r["row"]): r for r in map(json.loads, path.read_text().splitlines())}


def _live(e: dict) -> bool:
    return has_identity(e) and e["protected"] is not None


def compare(reference: dict, rerun: dict) -> dict:
    """Per row: PSNR differences and verdict counts; every edit whose verdict differs."""
    rows: dict[str, dict] = {}
    flips = []
    for key, r in sorted(rerun.items()):
        ref = reference.get(key)
        if ref is None:
            continue
        row = rows.setdefault(key[1], {"faces": 0, "dpsnr": [], "ruiz": [0, 0, 0], "face": [0, 0, 0]})
        row["faces"] += 1
        row["dpsnr"].append(r["psnr"] - ref["psnr"])
        for j, (was, now) in enumerate(zip(per_edit(ref), per_edit(r), strict=True)):
            a, b = was["mse"] > RUIZ_MSE, now["mse"] > RUIZ_MSE
            row["ruiz"] = [row["ruiz"][0] + a, row["ruiz"][1] + b, row["ruiz"][2] + 1]
            if a != b:
                flips.append((*key, j, "Ruiz MSE", was["mse"], now["mse"]))
            if _live(was) and _live(now):
                a, b = was["protected"] >= FAILS, now["protected"] >= FAILS
                row["face"] = [row["face"][0] + a, row["face"][1] + b, row["face"][2] + 1]
                if a != b:
                    flips.append((*key, j, "face-check distance", was["protected"], now["protected"]))
    return {"rows": rows, "flips": flips}


def report(found: dict, args) -> str:
    precision = {
        name: sorted({r.get("precision", "bf16") for r in recs.values()})
        for name, recs in (("reference", args.ref_records), ("rerun", args.rerun_records))
    }
    lines = [
        "# Paper-tables records: the same faces in two precisions",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (report written); reference {args.reference.name} "
        f"({', '.join(precision['reference'])}), rerun {args.rerun.name} ({', '.join(precision['rerun'])})",
        f"- commands: {args.commands}",
        "- per row: faces compared; PSNR of the protected photo, rerun minus reference (mean, largest |difference|); "
        f"edits disrupted by Ruiz's rule (MSE > {RUIZ_MSE}) and edits failing the face check (>= {FAILS}, edits "
        "whose clean edit passes), reference / rerun / edits",
        "",
        "| row | faces | PSNR difference (dB), mean / max abs | Ruiz: reference / rerun / edits | face check: reference / rerun / edits |",
        "|---|---:|---|---|---|",
    ]
    for name, row in found["rows"].items():
        d = row["dpsnr"]
        ruiz, face = row["ruiz"], row["face"]
        lines.append(
            f"| {name} | {row['faces']} | {statistics.mean(d):+.3f} / {max(map(abs, d)):.3f} | "
            f"{ruiz[0]} / {ruiz[1]} / {ruiz[2]} | {face[0]} / {face[1]} / {face[2]} |"
        )
    lines += ["", f"Edits whose verdict differs: {len(found['flips'])}"]
    lines += [f"- {f} {row} edit {j}: {what} {a:.4f} -> {b:.4f}" for f, row, j, what, a, b in found["flips"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--rerun", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--commands", default="`python benchmarks/paper_tables_precision.py`")
    args = p.parse_args()
    args.ref_records, args.rerun_records = _load(args.reference), _load(args.rerun)
    text = report(compare(args.ref_records, args.rerun_records), args)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
