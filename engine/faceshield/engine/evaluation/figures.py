"""The report's figures, drawn with Pillow (no plotting library needed).

`sample_grid`: the paper's Fig. 5 layout, one row per target: original, saliency mask, union mask,
manipulation mask, G(original), protected, G(protected). `scatter_plot`: PSNR against success
rate with both 95% intervals, one point per method and protocol. `line_chart`: success rate
under each real-world transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GRID_COLUMNS = (
    "original",
    "saliency mask",
    "union mask",
    "manipulation mask",
    "G(original)",
    "protected",
    "G(protected)",
)
SHARED_COLUMNS = (0, 1, 2, 3, 5)  # original, the three masks, protected
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 0),
)
MARKERS = ("circle", "square", "triangle", "diamond")
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
GRIDLINE = (225, 225, 225)


def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def display_mask(mask: np.ndarray) -> np.ndarray:
    """(R, R) float mask -> (R, R, 3) uint8, scaled by its own maximum (M_un and M_ma exceed 1)."""
    peak = float(mask.max()) if mask.size else 0.0
    scaled = mask / peak if peak > 0 else mask
    g = (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _tile(image: np.ndarray | None, size: int) -> Image.Image:
    if image is None:
        tile = Image.new("RGB", (size, size), (235, 235, 235))
        d = ImageDraw.Draw(tile)
        d.text((size // 2, size // 2), "not used", fill=(120, 120, 120), font=_font(12), anchor="mm")
        return tile
    img = Image.fromarray(image)
    return img if img.size == (size, size) else img.resize((size, size), Image.BILINEAR)


def sample_grid(rows: Sequence[dict], title: str = "", tile: int = 128) -> Image.Image:
    """Rows of dicts with `target`, `original`, `masks` (name -> (R, R) float), `g_original`,
    `protected`, `g_protected` (uint8 images) and optional `mse` / `psnr` captions; `repeat`
    leaves the image and mask columns blank where they equal the row above."""
    pad, label_w, head, foot = 6, 110, 40 if title else 22, 16
    width = label_w + len(GRID_COLUMNS) * (tile + pad) + pad
    height = head + len(rows) * (tile + foot + pad) + pad
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    d = ImageDraw.Draw(canvas)
    small, big = _font(11), _font(14)
    if title:
        d.text((pad, 6), title, fill=INK, font=big)
    for c, name in enumerate(GRID_COLUMNS):
        x = label_w + pad + c * (tile + pad) + tile // 2
        d.text((x, head - 4), name, fill=INK, font=small, anchor="ms")
    for r, row in enumerate(rows):
        y = head + r * (tile + foot + pad)
        d.text((pad, y + tile // 2), row["target"], fill=INK, font=small, anchor="lm")
        masks = row.get("masks", {})
        cells = [
            row["original"],
            *(display_mask(masks[k]) if k in masks else None for k in ("saliency", "union", "manipulation")),
            row["g_original"],
            row["protected"],
            row["g_protected"],
        ]
        for c, cell in enumerate(cells):
            if row.get("repeat") and c in SHARED_COLUMNS:
                continue  # same as the row above (one protected image for every target)
            canvas.paste(_tile(cell, tile), (label_w + pad + c * (tile + pad), y))
        captions = {
            5: f"PSNR {row['psnr']:.2f} dB" if row.get("psnr") is not None and not row.get("repeat") else "",
            6: f"output MSE {row['mse']:.4f}" if row.get("mse") is not None else "",
        }
        for c, text in captions.items():
            if text:
                d.text(
                    (label_w + pad + c * (tile + pad) + tile // 2, y + tile + 2),
                    text,
                    fill=INK,
                    font=small,
                    anchor="ma",
                )
    return canvas


class _Axes:
    """Linear data -> pixel mapping of one plot area."""

    def __init__(self, box: tuple[int, int, int, int], xlim: tuple[float, float], ylim: tuple[float, float]):
        self.box, self.xlim, self.ylim = box, xlim, ylim

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        fx = (x - self.xlim[0]) / (self.xlim[1] - self.xlim[0] or 1)
        fy = (y - self.ylim[0]) / (self.ylim[1] - self.ylim[0] or 1)
        return left + fx * (right - left), bottom - fy * (bottom - top)


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    span = hi - lo if hi > lo else 1.0
    raw = span / count
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag * 10)
    first = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(first, hi + step * 1e-6, step)]


def _limits(
    values: list[float], pad: float = 0.08, floor: float | None = None, ceil: float | None = None
) -> tuple[float, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    if floor is not None:
        lo = max(lo, floor)
    if ceil is not None:
        hi = min(hi, ceil)
    return lo, hi


def _frame(
    canvas: Image.Image,
    ax: _Axes,
    xlabel: str,
    ylabel: str,
    xticks: list[float],
    yticks: list[float],
    xfmt: str,
    yfmt: str,
    xnames: Sequence[str] | None = None,
) -> None:
    d = ImageDraw.Draw(canvas)
    left, top, right, bottom = ax.box
    font = _font(12)
    for i, v in enumerate(xticks):
        x, _ = ax(v, ax.ylim[0])
        d.line([(x, top), (x, bottom)], fill=GRIDLINE)
        d.text((x, bottom + 6), xnames[i] if xnames else format(v + 0.0, xfmt), fill=INK, font=font, anchor="ma")
    for v in yticks:
        _, y = ax(ax.xlim[0], v)
        d.line([(left, y), (right, y)], fill=GRIDLINE)
        d.text((left - 6, y), format(v + 0.0, yfmt), fill=INK, font=font, anchor="rm")
    d.rectangle([left, top, right, bottom], outline=INK)
    d.text(((left + right) / 2, bottom + 28), xlabel, fill=INK, font=_font(13), anchor="ma")
    label = Image.new("RGBA", (int(bottom - top), 20), (0, 0, 0, 0))
    ImageDraw.Draw(label).text(((bottom - top) / 2, 10), ylabel, fill=INK, font=_font(13), anchor="mm")
    rotated = label.rotate(90, expand=True)
    canvas.paste(rotated, (max(0, left - 70), int(top)), rotated)


def _marker(d: ImageDraw.ImageDraw, x: float, y: float, kind: str, colour: tuple, r: float = 5) -> None:
    if kind == "square":
        d.rectangle([x - r, y - r, x + r, y + r], fill=colour, outline=INK)
    elif kind == "triangle":
        d.polygon([(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)], fill=colour, outline=INK)
    elif kind == "diamond":
        d.polygon([(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)], fill=colour, outline=INK)
    else:
        d.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=INK)


def scatter_plot(
    points: Sequence[dict],
    title: str,
    xlabel: str,
    ylabel: str,
    xfmt: str = ".2f",
    yfmt: str = ".1f",
    size: tuple[int, int] = (960, 560),
) -> Image.Image:
    """Points of dicts: label, group (marker), x, y and optional x_low/x_high/y_low/y_high."""
    w, h = size
    canvas = Image.new("RGB", size, BACKGROUND)
    d = ImageDraw.Draw(canvas)
    d.text((20, 12), title, fill=INK, font=_font(15))
    box = (90, 50, w - 270, h - 70)
    ys = [v for p in points for v in (p["y"], p.get("y_low"), p.get("y_high")) if v is not None]
    # Success rates always span [0, 1]: methods stay comparable across plots.
    ax = _Axes(box, (-0.03, 1.03), _limits(ys))
    _frame(canvas, ax, xlabel, ylabel, [i / 10 for i in range(11)], _nice_ticks(*ax.ylim), xfmt, yfmt)
    labels = list(dict.fromkeys(p["label"] for p in points))
    groups = list(dict.fromkeys(p.get("group", "") for p in points))
    colour = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}
    marker = {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(groups)}
    for p in points:
        if p["x"] is None or p["y"] is None:
            continue
        x, y = ax(p["x"], p["y"])
        c = colour[p["label"]]
        if p.get("x_low") is not None and p.get("x_high") is not None:
            (x0, _), (x1, _) = ax(p["x_low"], p["y"]), ax(p["x_high"], p["y"])
            d.line([(x0, y), (x1, y)], fill=c, width=2)
        if p.get("y_low") is not None and p.get("y_high") is not None:
            (_, y0), (_, y1) = ax(p["x"], p["y_low"]), ax(p["x"], p["y_high"])
            d.line([(x, y0), (x, y1)], fill=c, width=2)
        _marker(d, x, y, marker[p.get("group", "")], c)
    _legend(d, (w - 255, 55), labels, colour, groups, marker)
    return canvas


def line_chart(
    series: Sequence[dict], categories: Sequence[str], title: str, ylabel: str, size: tuple[int, int] = (960, 520)
) -> Image.Image:
    """Series of dicts: label, values (one per category, None to skip), optional low/high lists."""
    w, h = size
    canvas = Image.new("RGB", size, BACKGROUND)
    d = ImageDraw.Draw(canvas)
    d.text((20, 12), title, fill=INK, font=_font(15))
    box = (90, 50, w - 270, h - 70)
    ax = _Axes(box, (-0.5, len(categories) - 0.5), (0.0, 1.02))
    _frame(canvas, ax, "", ylabel, list(range(len(categories))), _nice_ticks(0.0, 1.0, 5), "d", ".1f", categories)
    labels = [s["label"] for s in series]
    colour = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}
    n = max(1, len(series))
    for k, s in enumerate(series):
        c = colour[s["label"]]
        shift = (k - (n - 1) / 2) * 0.06  # keep overlapping series apart
        pts = [(ax(i + shift, v), i) for i, v in enumerate(s["values"]) if v is not None]
        if len(pts) > 1:
            d.line([p for p, _ in pts], fill=c, width=2)
        for (x, y), i in pts:
            lo, hi = (s.get("low") or [None] * len(categories))[i], (s.get("high") or [None] * len(categories))[i]
            if lo is not None and hi is not None:
                d.line([(x, ax(0, lo)[1]), (x, ax(0, hi)[1])], fill=c, width=1)
            _marker(d, x, y, "circle", c, 4)
    _legend(d, (w - 255, 55), labels, colour, [], {})
    return canvas


def _legend(
    d: ImageDraw.ImageDraw, origin: tuple[int, int], labels: list[str], colour: dict, groups: list[str], marker: dict
) -> None:
    x, y = origin
    font = _font(12)
    for lab in labels:
        d.rectangle([x, y + 2, x + 12, y + 14], fill=colour[lab], outline=INK)
        d.text((x + 20, y + 8), lab, fill=INK, font=font, anchor="lm")
        y += 20
    if len(groups) > 1 or (groups and groups[0]):
        y += 10
        for g in groups:
            _marker(d, x + 6, y + 8, marker[g], (255, 255, 255))
            d.text((x + 20, y + 8), g, fill=INK, font=font, anchor="lm")
            y += 20
