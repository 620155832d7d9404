"""The per-sample grids of the report: the paper's Fig. 5 layout, one row per target (original,
saliency mask, union mask, manipulation mask, G(original), protected, G(protected)).

Drawn with Pillow, not matplotlib: each cell shows an image at its own pixels (a perturbation of
a few levels in 255 is the point of the picture), which a plotting library's resampling would
blur. The plots beside them are in `figures.py`.
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
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)


def _font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
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
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BILINEAR)


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


def grid_rows(sample, outcome, joint: bool) -> list[dict]:
    """The rows of one sample's grid for one outcome: one per target (of the first face).
    Under the joint protocol one protected image serves every target: drawn once."""
    first = [o for o in outcome.generator_outputs if o.face == 0]
    metrics = [m for m in outcome.targets if m.face == 0]
    several = len({o.victim for o in first}) > 1
    return [
        {
            "target": f"{out.victim}/{out.target}" if several else out.target,
            "original": sample.image,
            "masks": outcome.masks,
            "repeat": t > 0 and joint,
            "g_original": out.original,
            "protected": outcome.protected,
            "g_protected": out.protected,
            "mse": m.mse,
            "psnr": outcome.input.psnr,
        }
        for t, (out, m) in enumerate(zip(first, metrics, strict=True))
    ]


def save_grid(path, rows: list[dict], title: str) -> None:
    """Draw the grid and write it atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    sample_grid(rows, title=title).save(tmp)
    tmp.replace(path)
