"""The evaluation report: Markdown for people, JSON for programs, PNG figures beside them.

Written from whatever records exist, so an interrupted run still leaves a valid (partial)
report that says how much of the plan it covers. Files are replaced atomically.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from . import sections
from .names import CELEBA_WHEEL
from .plots import PLOT_PSNR, summary_plots
from .rows import PAPER_PSNR_ORDER, TABLE_METHODS
from .runner import FIGURES_DIR, Evaluation
from .stats import Estimate
from .tables import build_tables

REPORT_MD = "report.md"
REPORT_JSON = "report.json"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _jsonable(value):
    if isinstance(value, Estimate):
        return {k: _jsonable(v) for k, v in value.as_dict().items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(ev: Evaluation, command: str | None = None) -> dict[str, Path]:
    """Write report.md, report.json and the summary plots into the run's folder. `command`:
    what to record as the run's command (default: the one the run recorded, `ev.command`)."""
    command = command or ev.command
    plan = ev.plan
    rows = ev.rows
    sizes = sorted(plan.sizes)
    tables = build_tables(ev.records(), ev.sample_ids, rows, plan.protocols, sizes, plan.transforms, ev.skipped)
    status = ev.status()
    fig_dir = ev.out_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": ev.out_dir / REPORT_MD, "json": ev.out_dir / REPORT_JSON}
    drawn = summary_plots(ev, tables, fig_dir)  # name -> {"png": path, "svg": path}
    plots = {name: files["png"] for name, files in drawn.items()}
    paths.update(plots)
    grids = sorted(p for p in fig_dir.glob("sample-*.png"))
    fp = ev.fingerprint()
    now = datetime.now(UTC).isoformat(timespec="seconds")

    report = {
        "format": 1,
        "generated": now,
        "command": command,
        "status": status,
        "models": fp["models"],
        "data": fp["data"],
        "plan": {
            "rows": list(plan.rows),
            "protocols": list(plan.protocols),
            "sizes": sizes,
            "targets": ev.targets,
            "transforms": list(plan.transforms),
            "seed": plan.seed,
            "batch_size": plan.batch_size,
            "attack": fp["attack"],
            "device": fp["device"],
        },
        "rows": {
            r.key: {
                "label": r.label,
                "table": r.table,
                "stages": dataclasses.asdict(r.stages),
                "paper": r.paper and dataclasses.asdict(r.paper),
            }
            for r in rows
        },
        "skipped": ev.skipped,
        "tables": tables,
        "figures": [str(p.relative_to(ev.out_dir)) for files in drawn.values() for p in files.values()]
        + [str(p.relative_to(ev.out_dir)) for p in grids],
    }
    _atomic_write(paths["json"], json.dumps(_jsonable(report), indent=1, allow_nan=False))
    _atomic_write(paths["markdown"], _markdown(ev, tables, status, fp, command, now, plots, grids))
    return paths


def _markdown(
    ev: Evaluation,
    tables: dict,
    status: dict,
    fp: dict,
    command: str | None,
    now: str,
    plots: dict[str, Path],
    grids: list[Path],
) -> str:
    plan = ev.plan
    sizes = sorted(plan.sizes)
    n = sizes[-1]
    m = fp["models"]
    out: list[str] = ["# FaceShield evaluation: union-saliency against the comparison attacks", ""]
    if status["complete"]:
        out.append(f"**Status: complete** — {status['done']} of {status['expected']} results.")
    else:
        out.append(
            f"**Status: PARTIAL** — {status['done']} of {status['expected']} results; numbers below cover "
            "what was computed. Rerun the same command to resume."
        )
    out.append("")
    if not m["trained"]:
        out += [
            "> **Untrained models.** These numbers come from fixed-seed, untrained weights: they exercise the "
            "pipeline, they say nothing about protection against a real StarGAN.",
            "",
        ]
    a = fp["attack"]
    out += [
        "## Run",
        "",
        f"- Generated {now}; compute time so far {_duration(status['compute_seconds'])} on `{fp['device']}`.",
        *([f"- Command: `{command}`"] if command else []),
        f"- Models: **{m['name']}** {m['version']} ({'trained' if m['trained'] else 'untrained'}); victims: "
        + ", ".join(f"{v[0]} ({v[1]}, {v[2]}×{v[2]})" for v in m.get("victims", []))
        + f"; saliency: {m['saliency']}.",
        "- Model hashes: "
        + ", ".join(f"{k} `{_short(v)}`" for k, v in sorted(m["hashes"].items()))
        + " (full values in report.json).",
        f"- Data: {_data_line(fp['data'])}; sample sizes {', '.join(map(str, sizes))}.",
        f"- Targets: {', '.join(ev.targets)}. Protocols: {', '.join(plan.protocols)}.",
        f"- Attack: ε {a['epsilon']}, step {a['step_size']}, {a['steps']} steps, noise generator {a['noise_steps']} "
        f"steps at {a['noise_lr']}, α {a['alpha']}, β {a['beta']}, γ {a['gamma']}, blur {a['blur_kernel']}/"
        f"{a['blur_sigma']}; seed {plan.seed} (each image's start seeded from it and the image's name).",
        "",
    ]
    if ev.skipped:
        out += ["**Skipped rows:** " + "; ".join(f"`{k}` ({v})" for k, v in ev.skipped.items()) + ".", ""]

    out += ["## Findings", ""]
    for protocol in plan.protocols:
        f = tables["findings"][protocol]
        out.append(f"- **{protocol}** ({n} images): the paper's ordering {f['verdict']}.")
        ranking = f.get("ranking") or {}
        if ranking.get("psnr"):  # no method has results under this protocol yet: nothing to rank
            paper = [k for k in PAPER_PSNR_ORDER if k in ranking["psnr"]][::-1]
            paper_note = f" (paper: {', '.join(paper)})" if len(paper) > 1 else ""
            out.append(
                f"  - PSNR ranking, best first: {', '.join(ranking['psnr'])}{paper_note}. "
                f"SSIM ranking: {', '.join(ranking['ssim'])}."
            )
        for k, c in f.get("comparisons", {}).items():
            out.append(
                f"  - union-saliency − {k}: PSNR {sections.fmt(c['psnr'], 2)} dB, SSIM {sections.fmt(c['ssim'], 4)} "
                f"(paired over images); success {sections.pct(c['success_ours'])} vs {sections.pct(c['success'])}."
            )
    out.append("")

    method_rows = [r for r in ev.rows if r.table == TABLE_METHODS and r.key not in ev.skipped]
    out += sections.method_tables(ev, tables, method_rows, sizes)
    out += sections.disruption_table(ev, tables, method_rows, n)
    out += sections.ablation_table(ev, tables, n)
    out += sections.policy_table(ev, tables, n)
    out += sections.robustness_tables(ev, tables, n)

    out += ["## Figures", "", "Each plot is also an SVG of the same name beside its PNG.", ""]
    if "psnr_plot" in plots:
        out += [
            "PSNR against success rate (colour: method; marker: protocol; bars: 95% intervals).",
            "",
            f"![PSNR against success rate]({FIGURES_DIR}/{PLOT_PSNR})",
            "",
        ]
    for protocol in plan.protocols:
        p = plots.get(f"robustness_{protocol}")
        if p:
            out += [f"![Robustness, {protocol}]({FIGURES_DIR}/{p.name})", ""]
    if grids and ev.figure_row is not None:
        out += [
            f"Per-sample grids (Fig. 5 layout) for {ev.figure_row.label}: original, saliency mask, "
            "union mask, manipulation mask, G(original), protected, G(protected), one row per target. Under the "
            "per-target protocol each row is its own protected image.",
            "",
        ]
        out += [f"![{g.stem}]({FIGURES_DIR}/{g.name})" for g in grids]
        out.append("")
    out += [
        "## How the numbers are computed",
        "",
        "- **Per-target protocol** (the paper's, following Ruiz et al.): each image is protected once per target "
        "attribute, against that target only; input metrics are averaged over an image's targets before the "
        "interval over images is taken. **Joint protocol**: one protected image per image, attacked against all "
        "targets at once, as the service protects.",
        "- Intervals: Student t over images for means; Wilson score for rates (decisions treated as independent).",
        "- Metrics are the engine's (docs/method.md §5) on the 8-bit protected image the caller would receive.",
        "- The comparison of methods counts as like-for-like only where success rates' intervals overlap.",
        f"- Data: {_data_note(fp['data'])}",
        "- Figures hold face images from the data set: treat this folder as you treat the data.",
        "",
    ]
    return "\n".join(out)


def _duration(seconds: float) -> str:
    """Compute time as a reader wants it: '0.4 s', '38 s', '12 min 5 s', '2 h 03 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds)) // 60
    if minutes < 60:
        return f"{minutes} min {int(round(seconds)) % 60} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _short(value: str) -> str:
    """The first 16 hex digits of a SHA-256; anything else (a model's name) as it is."""
    text = str(value)
    return text[:16] if len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower()) else text


def _data_line(d: dict) -> str:
    if d["kind"] == "real":
        return f"real photos that installed packages ship (`{d['root']}`, {d['size']} samples)"
    if d["kind"] == CELEBA_WHEEL:
        from .celeba_wheel import FACES

        wheel = f"{FACES.distribution} {FACES.version}"
        return f"CelebA aligned faces from the {wheel} wheel ({d['size']} available), 178 px centre square"
    if d["kind"] == "synthetic":
        return f"held-out synthetic faces (`{d['root']}`, test split of the demo pair's face generator)"
    if d["kind"] == "celeba":
        return (
            f"CelebA at `{Path(d['root']).name}`, StarGAN's {'test split' if d['split'] == 'test' else 'shuffled list'} "
            f"({d['size']} images available), {d['crop']} crop"
        )
    return f"image folder `{Path(d['root']).name}` ({d['size']} images available), {d['crop']} crop"


def _data_note(d: dict) -> str:
    if d["kind"] == "real":
        from .real_photos import BOX_SCALES, RealPhotos

        credits = "; ".join(f"{p.name}: {p.credit}, {p.license}" for p in RealPhotos(d.get("split")).credits())
        return (
            "real photos read from the installed scikit-image and matplotlib distributions (nothing downloaded). "
            f"Portraits carry a hand-drawn head box, used at scales {', '.join(f'{s:g}' for s in BOX_SCALES)} "
            "(sample `name@scale`); other photos are protected in their centre square. No attribute annotations: "
            f"targets are built from an all-zero original. Credits and licenses: {credits}."
        )
    if d["kind"] == CELEBA_WHEEL:
        from .celeba_wheel import FACES

        return (
            f"{FACES.credit}; {FACES.license}. Read from the hash-checked wheel in memory, never written. Each "
            "face is the 178-pixel centre square (StarGAN's crop) at its own size, the whole square as the face "
            "box; no attribute annotations ship with them, so targets are built from an all-zero original."
        )
    if d["kind"] == "synthetic":
        return (
            "procedural faces from `faceshield.engine.synthetic` (identities of its test split, which the demo "
            "models never saw), rendered at the generator's size, with their true attributes as the original "
            "labels."
        )
    if d["kind"] == "celeba":
        return (
            "CelebA as the official StarGAN loader reads it: the attribute list shuffled with random.seed(1234), "
            "the first 1999 entries as the test split, 178-pixel centre crop, bilinear resize to the generator's "
            "size; the first N of that order are used."
        )
    return (
        "images in name order, each centre-cropped to a square and resized to the generator's size (crop "
        f"`{d['crop']}`); no attribute annotations, so targets are built from an all-zero original (docs/method.md §2)."
    )
