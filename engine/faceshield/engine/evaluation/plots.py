"""The report's summary plots: which numbers of the tables each one shows.

`summary_plots` turns the tables into the points and series of `figures.scatter_plot` and
`figures.line_chart` and saves each as PNG and SVG in the report's figures folder. The points
are also returned (`plot_data`), so that a test, or a reader of report.json, can check what a
plot shows without reading its pixels.
"""

from __future__ import annotations

from pathlib import Path

from .rows import ALL_ROWS, TABLE_METHODS

PLOT_PSNR = "psnr-vs-success.png"
SHORT_LABELS = {
    "none": "none",
    "jpeg95": "JPEG 95",
    "jpeg85": "JPEG 85",
    "jpeg75": "JPEG 75",
    "downscale2": "down x2, up",
    "blur1": "blur 1 px",
}


def plot_data(ev, tables: dict) -> dict[str, dict]:
    """name -> {"kind", "title", ... and the points or series} for every plot the report has."""
    n = max(ev.plan.sizes)
    out: dict[str, dict] = {}
    points = []
    for protocol, by_size in tables["protocols"].items():
        for key, st in by_size[n].items():
            if ALL_ROWS[key].table != TABLE_METHODS or not st["images"]:
                continue
            psnr, succ = st["input"]["psnr"], st["success"]
            points.append(
                {
                    "label": ALL_ROWS[key].label,
                    "group": protocol,
                    "x": succ.mean,
                    "x_low": succ.low,
                    "x_high": succ.high,
                    "y": psnr.mean,
                    "y_low": psnr.low,
                    "y_high": psnr.high,
                }
            )
    if points:
        out["psnr_plot"] = {
            "kind": "scatter",
            "stem": Path(PLOT_PSNR).stem,
            "title": f"PSNR against success rate (Ruiz's rule), {n} images, 95% intervals",
            "xlabel": "success rate (output MSE > 0.05)",
            "ylabel": "PSNR of the protected image (dB)",
            "points": points,
        }
    if ev.plan.transforms:
        cats = ["none", *ev.plan.transforms]
        for protocol, by_size in tables["protocols"].items():
            series = []
            for key, st in by_size[n].items():
                if not st["images"] or ALL_ROWS[key].table != TABLE_METHODS:
                    continue
                ests = [st["success"], *(st["robustness"][t]["success"] for t in ev.plan.transforms)]
                series.append(
                    {
                        "label": ALL_ROWS[key].label,
                        "values": [e.mean for e in ests],
                        "low": [e.low for e in ests],
                        "high": [e.high for e in ests],
                    }
                )
            if series:
                out[f"robustness_{protocol}"] = {
                    "kind": "lines",
                    "stem": f"robustness-{protocol}",
                    "title": f"Success rate after real-world transforms ({protocol} protocol, {n} images)",
                    "ylabel": "success rate (vs G(transformed original))",
                    "categories": [SHORT_LABELS.get(c, c) for c in cats],
                    "series": series,
                }
    return out


def summary_plots(ev, tables: dict, fig_dir: Path) -> dict[str, dict[str, Path]]:
    """Draw and save every plot of `plot_data`; name -> {"png": path, "svg": path}."""
    from .figures import line_chart, save_figure, scatter_plot  # matplotlib: only when drawing

    drawn = {}
    for name, d in plot_data(ev, tables).items():
        if d["kind"] == "scatter":
            fig = scatter_plot(d["points"], d["title"], d["xlabel"], d["ylabel"])
        else:
            fig = line_chart(d["series"], d["categories"], d["title"], d["ylabel"])
        drawn[name] = save_figure(fig, fig_dir / d["stem"])
    return drawn
