"""The report's plots, drawn with matplotlib and saved as PNG (for the Markdown report) and SVG
(for papers and zooming) side by side.

`scatter_plot`: PSNR against success rate, one point per method and protocol, with both 95%
intervals as bars. `line_chart`: success rate under each real-world transform, one line per
method, with Wilson intervals. Both return a `matplotlib.figure.Figure`; `save_figure` writes it.

Figures are made with the object-oriented API on the Agg canvas, never through pyplot: no GUI
backend is touched (servers and CI have no display), no global figure state leaks between
reports, and the process-wide backend choice of a caller is left alone. One style (`STYLE`)
holds for every plot; SVG output is made deterministic (fixed hash salt, no date) so that a
rewritten report changes only where its numbers do.

The per-sample grids are images, not plots: see `grids.py` (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .grids import GRID_COLUMNS, SHARED_COLUMNS, display_mask, sample_grid

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # for mypy only: no import at run time, whatever the matplotlib

__all__ = [
    "GRID_COLUMNS",
    "SHARED_COLUMNS",
    "display_mask",
    "line_chart",
    "sample_grid",
    "save_figure",
    "scatter_plot",
]

# Tableau's ten, as matplotlib's default cycle: distinguishable, and colour-blind tolerable.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MARKERS = ("o", "s", "^", "D")  # one per group (protocol)
STYLE: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.6,
    "errorbar.capsize": 3,
    "savefig.dpi": 150,
    "svg.fonttype": "none",  # text stays text in the SVG (searchable, small)
    "svg.hashsalt": "faceshield",  # stable element ids
}
FORMATS = ("png", "svg")
SIZE = (9.6, 5.4)  # inches


def _colours(labels: Sequence[str]) -> dict[str, str]:
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(dict.fromkeys(labels))}


def _error(value: float | None, low: float | None, high: float | None) -> list[list[float]] | None:
    """matplotlib's asymmetric error bar for one point, or None without an interval."""
    if value is None or low is None or high is None:
        return None
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]


def scatter_plot(points: Sequence[dict], title: str, xlabel: str, ylabel: str) -> Figure:
    """Points of dicts: label (colour), group (marker), x (a rate in [0, 1]), y, and optional
    x_low/x_high/y_low/y_high (95% intervals, drawn as bars). Points without x or y are left out."""
    with rc_context(STYLE):
        fig = Figure(figsize=SIZE, layout="constrained")  # room for the legends outside the axes
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        colour = _colours([p["label"] for p in points])
        groups = list(dict.fromkeys(p.get("group", "") for p in points))
        marker = {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(groups)}
        for p in points:
            if p["x"] is None or p["y"] is None:
                continue
            ax.errorbar(
                [p["x"]],
                [p["y"]],
                xerr=_error(p["x"], p.get("x_low"), p.get("x_high")),
                yerr=_error(p["y"], p.get("y_low"), p.get("y_high")),
                fmt=marker[p.get("group", "")],
                color=colour[p["label"]],
                markeredgecolor="#222222",
                markersize=7,
                elinewidth=1.4,
                label=f"{p['label']} ({p.get('group', '')})" if p.get("group") else p["label"],
                gid=f"point:{p['label']}:{p.get('group', '')}",
            )
        # Success rates always span [0, 1]: plots of different runs stay comparable.
        ax.set_xlim(-0.03, 1.03)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _legends(fig, colour, marker if len(groups) > 1 or groups[:1] != [""] else {})
        return fig


def line_chart(series: Sequence[dict], categories: Sequence[str], title: str, ylabel: str) -> Figure:
    """Series of dicts: label, values (one per category, None to skip), optional low/high lists
    (95% intervals). Series are nudged sideways so that overlapping bars stay visible."""
    with rc_context(STYLE):
        fig = Figure(figsize=SIZE, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        colour = _colours([s["label"] for s in series])
        n = max(1, len(series))
        for k, s in enumerate(series):
            shift = (k - (n - 1) / 2) * 0.06
            low = s.get("low") or [None] * len(categories)
            high = s.get("high") or [None] * len(categories)
            xs, ys, below, above = [], [], [], []
            for i, v in enumerate(s["values"]):
                if v is None:
                    continue
                xs.append(i + shift)
                ys.append(v)
                err = _error(v, low[i], high[i]) or [[0.0], [0.0]]
                below.append(err[0][0])
                above.append(err[1][0])
            ax.errorbar(
                xs,
                ys,
                yerr=[below, above],
                fmt="-o",
                color=colour[s["label"]],
                markersize=5,
                elinewidth=1.0,
                label=s["label"],
                gid=f"series:{s['label']}",
            )
        ax.set_xticks(range(len(categories)), list(categories))
        ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_ylim(0.0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(False, axis="x")
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        fig.legend(title="method", loc="outside right upper")
        return fig


def _legends(fig: Figure, colour: dict[str, str], marker: dict[str, str]) -> None:
    """Methods by colour, and (when there are several) groups by marker, right of the axes."""
    from matplotlib.lines import Line2D

    methods = [Line2D([], [], ls="", marker="s", markersize=8, color=c, label=lab) for lab, c in colour.items()]
    fig.legend(handles=methods, title="method", loc="outside right upper")
    if marker:
        shapes = [
            Line2D([], [], ls="", marker=m, markersize=7, color="white", markeredgecolor="#222222", label=g)
            for g, m in marker.items()
        ]
        fig.legend(handles=shapes, title="protocol", loc="outside right lower")


def save_figure(fig: Figure, stem: Path) -> dict[str, Path]:
    """Write `stem`.png and `stem`.svg (each atomically: a temporary file, then a rename) and
    return them by format."""
    paths = {}
    with rc_context(STYLE):
        for fmt in FORMATS:
            path = stem.with_suffix(f".{fmt}")
            tmp = path.with_name(f".{path.name}.tmp")
            # No dates or software versions in the files: the same numbers give the same SVG.
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(tmp, format=fmt, metadata=metadata)
            os.replace(tmp, path)
            paths[fmt] = path
    return paths
