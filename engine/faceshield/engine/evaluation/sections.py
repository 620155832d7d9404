"""The report's tables, one function per section: Tables I-III as the paper has them, the
disruption of each victim, the product's policies, and robustness to real processing.

Each function returns markdown lines (nothing where its rows were not evaluated); `report.py`
puts them in order.
"""

from __future__ import annotations

from ..io.processing import TRANSFORM_LABELS
from .rows import ALL_ROWS, TABLE_ABLATION, TABLE_POLICIES, Row
from .stats import Estimate, paired_difference
from .tables import _group, per_image


def fmt(e: Estimate | None, digits: int) -> str:
    if e is None or e.mean is None:
        return "–"
    if e.low is None or e.high is None:  # one value (`mean_ci`): no interval, neither bound
        return f"{e.mean:.{digits}f}"
    return f"{e.mean:.{digits}f} ± {(e.high - e.low) / 2:.{digits}f}"


def pct(e: Estimate | None) -> str:
    if e is None or e.mean is None:
        return "–"
    assert e.low is not None and e.high is not None  # a proportion (`wilson`) with a mean has both bounds
    return f"{100 * e.mean:.1f}% [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def victims_of(ev) -> list[str]:
    """The victims the evaluated targets belong to."""
    from ..models.victims import select_targets

    return list(select_targets(ev.engine.models.victims, ev.targets))


def bold_best(header: list[str], body: list[list[str]], metrics: tuple[str, ...], sizes: list[int]) -> list[list[str]]:
    """Bold the best mean of each measured column, as the paper's tables do."""
    higher = {"psnr": True, "ssim": True, "l1": False, "l2": False}
    for col in range(1, 1 + len(metrics) * len(sizes)):
        mt = metrics[(col - 1) % len(metrics)]
        vals = []
        for r, row in enumerate(body):
            try:
                vals.append((float(row[col].split(" ")[0]), r))
            except ValueError:
                continue
        if len(vals) > 1:
            best = (max if higher[mt] else min)(vals)[0]
            for v, r in vals:
                if v == best:
                    body[r][col] = f"**{body[r][col]}**"
    return body


def method_tables(ev, tables: dict, method_rows: list[Row], sizes: list[int]) -> list[str]:
    out: list[str] = []
    for title, metrics, digits in (
        ("Table I — L1 and L2 error", ("l1", "l2"), (4, 4)),
        ("Table II — PSNR (dB) and SSIM", ("psnr", "ssim"), (2, 4)),
    ):
        if not method_rows:
            break
        out += [
            f"## {title}",
            "",
            "Protected image against the original, metric space [0, 1]; mean ± half-width of the 95% interval "
            'over images. The paper\'s columns are its "Average"; its L1/L2 scaling is unstated (compare PSNR, '
            "SSIM and the ordering).",
            "",
        ]
        for protocol in ev.plan.protocols:
            header = (
                ["Attacker"]
                + [f"{mt.upper()} (n={s})" for s in sizes for mt in metrics]
                + [f"paper {mt.upper()}" for mt in metrics]
            )
            body = []
            for r in method_rows:
                cells = [r.label]
                for s in sizes:
                    st = tables["protocols"][protocol][s][r.key]
                    cells += [fmt(st["input"][mt], d) for mt, d in zip(metrics, digits, strict=True)]
                cells += [
                    (f"{getattr(r.paper, mt):.{d}f}" if r.paper else "–") for mt, d in zip(metrics, digits, strict=True)
                ]
                body.append(cells)
            out += [f"**{protocol} protocol**", "", table(header, bold_best(header, body, metrics, sizes)), ""]
    return out


def _victim_columns(ev) -> list[str]:
    names = victims_of(ev)
    return [f"success: {v}" for v in names] if len(names) > 1 else []


def _victim_cells(ev, st: dict, key: str = "success") -> list[str]:
    names = victims_of(ev)
    if len(names) < 2:
        return []
    return [pct(st.get("by_victim", {}).get(v, {}).get(key)) for v in names]


def disruption_table(ev, tables: dict, method_rows: list[Row], n: int) -> list[str]:
    if not method_rows:
        return []
    out = [
        "## Disruption of the victims",
        "",
        "Success: output MSE between G(protected, c) and G(original, c) above 0.05 (Ruiz et al.); masked: "
        "the same over the pixels the edit changes (CMUA-Watermark). Rates over images × targets (every "
        "victim's), with 95% Wilson intervals; where the model set has several victims, each one's own rate "
        "follows.",
        "",
    ]
    for protocol in ev.plan.protocols:
        header = [
            "Attacker",
            "success (Ruiz)",
            "success (masked)",
            *_victim_columns(ev),
            "output MSE",
            "masked output MSE",
            "PSNR (dB)",
            "s / image",
        ]
        body = []
        for r in method_rows:
            st = tables["protocols"][protocol][n][r.key]
            body.append(
                [
                    r.label,
                    pct(st["success"]),
                    pct(st["masked_success"]),
                    *_victim_cells(ev, st),
                    fmt(st["output_mse"], 4),
                    fmt(st["output_masked_mse"], 4),
                    fmt(st["input"]["psnr"], 2),
                    "–" if st["seconds_per_image"] is None else f"{st['seconds_per_image']:.2f}",
                ]
            )
        out += [f"**{protocol} protocol, {n} images**", "", table(header, body), ""]
    return out


def ablation_table(ev, tables: dict, n: int) -> list[str]:
    rows = [r for r in ev.rows if r.table == TABLE_ABLATION and r.key not in ev.skipped]
    if not rows:
        return []
    out = [
        "## Table III — ablation",
        "",
        "The baseline is Spread-Spectrum (paper IV-E); each row switches on the components it names and "
        "keeps the baseline's uniform start and Ruiz's blur schedule. The last row is the method itself "
        "(Gaussian blur 11/1.0), which the paper reports as its final row. Δ PSNR is paired over images "
        "against the baseline.",
        "",
    ]
    grouped = _group(ev.records())
    base = ALL_ROWS["b"]
    for protocol in ev.plan.protocols:
        header = [
            "Row",
            "L1",
            "L2",
            "PSNR (dB)",
            "SSIM",
            "Δ PSNR vs baseline",
            "success (Ruiz)",
            "success (masked)",
            *_victim_columns(ev),
            "paper PSNR",
            "paper SSIM",
        ]
        body = []
        ids = ev.sample_ids[:n]
        base_psnr = per_image(grouped.get((base.work_key, protocol), {}), ids, "psnr")
        for r in rows:
            st = tables["protocols"][protocol][n][r.key]
            d = paired_difference(per_image(grouped.get((r.work_key, protocol), {}), ids, "psnr"), base_psnr)
            body.append(
                [
                    r.label,
                    fmt(st["input"]["l1"], 4),
                    fmt(st["input"]["l2"], 4),
                    fmt(st["input"]["psnr"], 2),
                    fmt(st["input"]["ssim"], 4),
                    "–" if r.key == "b" else fmt(d, 2),
                    pct(st["success"]),
                    pct(st["masked_success"]),
                    *_victim_cells(ev, st),
                    f"{r.paper.psnr:.2f}" if r.paper else "–",
                    f"{r.paper.ssim:.4f}" if r.paper else "–",
                ]
            )
        out += [f"**{protocol} protocol, {n} images**", "", table(header, body), ""]
    return out


def policy_table(ev, tables: dict, n: int) -> list[str]:
    rows = [r for r in ev.rows if r.table == TABLE_POLICIES and r.key not in ev.skipped]
    if not rows:
        return []
    out = [
        "## Beyond the paper: verified and robust protection",
        "",
        "What the service and the command line run by default. *Early stop*: an image leaves as soon as every "
        "edit is disrupted with margin (output MSE > 0.06, measured on the 8-bit result). *Ensure*: further "
        "rounds of steps (SSIM weight halved each round, the last moving the whole face box) until every edit "
        "is disrupted with margin or 60 steps in all are spent. *Robust stage*: the blur of each step replaced "
        "by an expectation over differentiable JPEG (quality 70–95), a down-up resize (0.5–1×) and the blur. "
        "*Protected*: the share of images whose verdict says every edit is disrupted. *Passes*: generator "
        "passes per image, checks included.",
        "",
    ]
    cats = list(ev.plan.transforms)
    for protocol in ev.plan.protocols:
        header = [
            "Row",
            "PSNR (dB)",
            "SSIM",
            "success (Ruiz)",
            *_victim_columns(ev),
            "protected",
            "steps",
            "passes",
            *[f"after {TRANSFORM_LABELS[t]}" for t in cats],
        ]
        body = []
        for r in rows:
            st = tables["protocols"][protocol][n][r.key]
            body.append(
                [
                    r.label,
                    fmt(st["input"]["psnr"], 2),
                    fmt(st["input"]["ssim"], 4),
                    pct(st["success"]),
                    *_victim_cells(ev, st),
                    pct(st.get("protected")),
                    fmt(st.get("steps"), 1),
                    fmt(st.get("passes"), 1),
                    *[pct(st["robustness"][t]["success"]) for t in cats],
                ]
            )
        out += [f"**{protocol} protocol, {n} images**", "", table(header, body), ""]
    return out


def robustness_tables(ev, tables: dict, n: int) -> list[str]:
    if not ev.plan.transforms:
        return []
    rows = [r for r in ev.rows if r.key not in ev.skipped and r.table != TABLE_ABLATION]
    out = [
        "## Robustness to real-world processing",
        "",
        "Each protected image is transformed (JPEG re-encoding, downscaling by 2 and back, Gaussian blur) "
        "and then edited by every victim. Success compares G(T(protected)) with G(T(original)): the edit the "
        "forger would get from the same transformed, unprotected photo. The control row applies T to the "
        "unprotected image and compares G(T(original)) with G(original): how often the transform alone "
        "would pass the success rule had G(original) been the reference.",
        "",
    ]
    cats = list(ev.plan.transforms)
    for rule, key in (("Ruiz's rule", "success"), ("masked rule", "masked_success")):
        for protocol in ev.plan.protocols:
            header = ["Attacker", "none"] + [TRANSFORM_LABELS[t] for t in cats]
            body = []
            for r in rows:
                st = tables["protocols"][protocol][n][r.key]
                body.append([r.label, pct(st[key])] + [pct(st["robustness"][t][key]) for t in cats])
            ctrl = tables["control"].get(n, {})
            if ctrl.get("images"):
                body.append(["no protection (control, vs G(original))", "–"] + [pct(ctrl[t][key]) for t in cats])
            out += [f"**Success rate, {rule}, {protocol} protocol, {n} images**", "", table(header, body), ""]
    return out
