"""Read the attributes of a synthetic face back from its pixels.

Each detector looks at a region placed by the face's `Layout` (which the attributes never move)
and compares colours measured in the same image, so it works on the renderer's output and on a
generator's edit of it alike:

- hair colour: the mean colour of the crown, nearest of the three prototypes;
- male: the share of chin pixels closer to the beard colour (crown colour x `BEARD_SHADE`) than
  to the skin colour (the mean of two cheek patches) exceeds one half;
- young: the forehead is about as bright as the cheeks; wrinkle lines darken it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import ATTRIBUTES, BEARD_SHADE, HAIR_PROTOTYPES, Layout

MALE_THRESHOLD = 0.5  # share of chin pixels that look like beard
OLD_THRESHOLD = 0.92  # forehead / cheek luminance below this: wrinkles
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Measurement:
    hair: int  # 0 black, 1 blond, 2 brown (CelebA order)
    male: bool
    young: bool
    hair_colour: tuple[float, float, float]
    beard_share: float
    forehead_ratio: float

    @property
    def vector(self) -> np.ndarray:
        """(5,) float32 in CelebA order."""
        c = np.zeros(len(ATTRIBUTES), dtype=np.float32)
        c[self.hair], c[3], c[4] = 1, float(self.male), float(self.young)
        return c


def regions(layout: Layout, resolution: int) -> dict[str, np.ndarray]:
    """Boolean (R, R) masks of the measured regions: crown, cheeks, chin, forehead."""
    L = layout
    g = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
    x, y = np.meshgrid(g, g)

    def box(y0, y1, x0, x1):
        return (y >= y0) & (y <= y1) & (x >= x0) & (x <= x1)

    cheeks = np.zeros_like(x, dtype=bool)
    for side in (-1, 1):
        px = L.cx + side * 0.5 * L.a
        cheeks |= box(L.cy + 0.04 * L.b, L.cy + 0.16 * L.b, px - 0.08 * L.a, px + 0.08 * L.a)
    out = {
        "crown": box(L.cy - 0.95 * L.b, L.hairline - 0.06 * L.b, L.cx - 0.35 * L.a, L.cx + 0.35 * L.a),
        "cheeks": cheeks,
        "chin": box(L.cy + 0.62 * L.b, L.cy + 0.85 * L.b, L.cx - 0.3 * L.a, L.cx + 0.3 * L.a),
        "forehead": box(L.hairline + 0.06 * L.b, L.brow_y - 0.08 * L.b, L.cx - 0.4 * L.a, L.cx + 0.4 * L.a),
    }
    for name, m in out.items():
        if not m.any():  # too small to hold a pixel at this resolution
            raise ValueError(f"the {name} region is empty at resolution {resolution}")
    return out


def measure(image: np.ndarray, layout: Layout, region_masks: dict[str, np.ndarray] | None = None) -> Measurement:
    """Attributes of one (R, R, 3) RGB image (uint8, or float in 0..255)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"expected a square (R, R, 3) RGB image, got {img.shape}")
    reg = region_masks if region_masks is not None else regions(layout, img.shape[0])
    hair_rgb = img[reg["crown"]].mean(axis=0)
    hair = int(np.argmin(np.linalg.norm(HAIR_PROTOTYPES - hair_rgb, axis=1)))
    skin_rgb = img[reg["cheeks"]].mean(axis=0)
    chin = img[reg["chin"]]
    to_beard = np.linalg.norm(chin - BEARD_SHADE * hair_rgb, axis=1)
    to_skin = np.linalg.norm(chin - skin_rgb, axis=1)
    beard_share = float((to_beard < to_skin).mean())
    ratio = float((img[reg["forehead"]] @ _LUMA).mean() / max(float(skin_rgb @ _LUMA), 1.0))
    return Measurement(
        hair=hair,
        male=beard_share > MALE_THRESHOLD,
        young=ratio >= OLD_THRESHOLD,
        hair_colour=(float(hair_rgb[0]), float(hair_rgb[1]), float(hair_rgb[2])),  # RGB: img is (R, R, 3)
        beard_share=beard_share,
        forehead_ratio=ratio,
    )


def target_hit(measured: Measurement, target: str, target_vector) -> bool:
    """Whether an edit towards `target_vector` shows the attribute `target` asked for."""
    c = np.asarray(target_vector, dtype=np.float32).reshape(-1)
    if target not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {target!r}; expected one of {', '.join(ATTRIBUTES)}")
    i = ATTRIBUTES.index(target)
    if i < 3:
        return measured.hair == i
    if i == 3:
        return measured.male == bool(c[3])
    return measured.young == bool(c[4])
