"""Procedural synthetic faces with ground truth, numpy only.

A face is an *identity* (`FaceSpec`: geometry, skin, hair shades, eye colour, background, all
drawn from a seed) rendered under an *attribute vector* in CelebA's order
``(Black_Hair, Blond_Hair, Brown_Hair, Male, Young)``. The attributes change only what they name,
so one identity rendered under two vectors is an exact counterfactual pair:

- hair colour: crown, long hair, eyebrows and beard take the black, blond or brown shade;
- male: short hair, ears showing, a beard and moustache, a squarer jaw, darker lips and thicker
  eyebrows; female: long hair framing the face down to the chin, red lips;
- young: smooth, saturated skin; old: forehead lines, crow's feet, nasolabial folds and paler,
  greyer skin.

Every region an attribute paints is large and placed relative to the face, so that
`faceshield.engine.synthetic.measure` can read the attribute back from the pixels. The
foreground mask (face, ears, neck, hair) is the exact coverage the compositor used.

Coordinates are fractions of the image side, so the same spec renders at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_NAMES = ("black", "blond", "brown")  # index = position in ATTRIBUTES
# Prototype hair colours (RGB 0..255). Far apart from each other and from the skin range.
HAIR_PROTOTYPES = np.array([[30, 26, 26], [222, 186, 96], [104, 62, 34]], dtype=np.float32)
HAIR_JITTER = 12.0
SKIN_LIGHT = np.array([238, 204, 178], dtype=np.float32)
SKIN_DARK = np.array([196, 146, 112], dtype=np.float32)
BEARD_SHADE = 0.85  # beard colour = hair colour x this
WRINKLE_SHADE = 0.6  # wrinkle colour = skin colour x this
OLD_DESATURATION = 0.25
LINE_HALF_WIDTH = 0.008  # wrinkle half-width, fraction of the image side (~1 px at 128)


@dataclass(frozen=True)
class Layout:
    """Where the face is: centre (cx, cy), half-width a, half-height b, hairline, eyes, mouth.
    All in fractions of the image side; independent of the attributes."""

    cx: float
    cy: float
    a: float
    b: float
    hairline: float  # y of the hairline at the centre
    hairline_curve: float  # how much lower it is towards the temples (a rounded fringe)
    eye_y: float
    eye_dx: float
    brow_y: float
    mouth_y: float


@dataclass(frozen=True)
class FaceSpec:
    """One identity: everything but the attributes."""

    layout: Layout
    skin: np.ndarray  # (3,) RGB, young skin
    hair: np.ndarray  # (3, 3) RGB per hair colour (black, blond, brown)
    iris: np.ndarray  # (3,)
    lips: np.ndarray  # (3,) female lip colour
    background_seed: int
    texture_seed: int


@dataclass(frozen=True)
class RenderedFace:
    image: np.ndarray  # (R, R, 3) uint8
    mask: np.ndarray  # (R, R) float32 in [0, 1]: foreground coverage
    attributes: np.ndarray  # (5,) float32, CelebA order


def sample_identity(rng: np.random.Generator) -> FaceSpec:
    """Draw an identity. Same generator state, same identity."""
    # Framed like a CelebA crop: the head fills most of the image, background around it.
    cx = rng.uniform(0.45, 0.55)
    cy = rng.uniform(0.53, 0.58)
    a = rng.uniform(0.26, 0.31)
    b = a * rng.uniform(1.2, 1.32)
    hairline = cy - b * rng.uniform(0.58, 0.66)
    eye_y = cy - b * rng.uniform(0.06, 0.12)
    layout = Layout(
        cx=cx,
        cy=cy,
        a=a,
        b=b,
        hairline=hairline,
        hairline_curve=rng.uniform(0.02, 0.06) * b,
        eye_y=eye_y,
        eye_dx=a * rng.uniform(0.38, 0.46),
        brow_y=eye_y - b * rng.uniform(0.14, 0.17),
        mouth_y=cy + b * rng.uniform(0.42, 0.5),
    )
    t = rng.uniform()
    skin = (1 - t) * SKIN_LIGHT + t * SKIN_DARK + rng.uniform(-6, 6, 3)
    hair = HAIR_PROTOTYPES + rng.uniform(-HAIR_JITTER, HAIR_JITTER, (3, 3))
    iris = rng.choice(np.array([[70, 45, 25], [50, 90, 140], [60, 100, 60], [40, 30, 25]], dtype=np.float32))
    lips = np.array([190, 55, 70], dtype=np.float32) + rng.uniform(-15, 15, 3)
    return FaceSpec(
        layout=layout,
        skin=skin.astype(np.float32),
        hair=np.clip(hair, 0, 255).astype(np.float32),
        iris=iris + rng.uniform(-10, 10, 3).astype(np.float32),
        lips=lips,
        background_seed=int(rng.integers(2**31)),
        texture_seed=int(rng.integers(2**31)),
    )


def sample_attributes(rng: np.random.Generator) -> np.ndarray:
    """One hair colour uniformly, Male and Young each with probability 1/2."""
    c = np.zeros(5, dtype=np.float32)
    c[rng.integers(3)] = 1
    c[3], c[4] = rng.integers(2), rng.integers(2)
    return c


def all_attribute_vectors() -> np.ndarray:
    """The 12 valid vectors (3 hair colours x male x young), (12, 5)."""
    rows = []
    for hair in range(3):
        for male in (0, 1):
            for young in (0, 1):
                c = np.zeros(5, dtype=np.float32)
                c[hair], c[3], c[4] = 1, male, young
                rows.append(c)
    return np.stack(rows)


def check_attributes(attributes) -> tuple[int, bool, bool]:
    """(hair index, male, young) of a CelebA-order vector with exactly one hair colour."""
    c = np.asarray(attributes, dtype=np.float32).reshape(-1)
    if c.shape != (5,) or not np.isin(c, (0.0, 1.0)).all() or c[:3].sum() != 1:
        raise ValueError(f"expected 5 values of 0/1 with exactly one hair colour, got {c.tolist()}")
    return int(np.argmax(c[:3])), bool(c[3]), bool(c[4])


# -- drawing primitives ---------------------------------------------------------------------
class _Canvas:
    """Pixel-centre coordinate grids in fractions of the side, and soft-edged shapes."""

    def __init__(self, resolution: int):
        self.r = resolution
        g = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution
        self.x, self.y = np.meshgrid(g, g)
        self.px = 1.0 / resolution

    def soft(self, signed_distance: np.ndarray) -> np.ndarray:
        """Coverage from a signed distance (negative inside), about one pixel of anti-aliasing."""
        return np.clip(0.5 - signed_distance / self.px, 0.0, 1.0)

    def ellipse(self, cx, cy, ax, by, power: float = 2.0) -> np.ndarray:
        rho = (np.abs((self.x - cx) / ax) ** power + np.abs((self.y - cy) / by) ** power) ** (1 / power)
        return self.soft((rho - 1) * min(ax, by))

    def band(self, y0, y1, x0, x1) -> np.ndarray:
        inside = np.maximum(np.maximum(y0 - self.y, self.y - y1), np.maximum(x0 - self.x, self.x - x1))
        return self.soft(inside)

    def curve(self, xs: np.ndarray, ys: np.ndarray, half_width: float) -> np.ndarray:
        """A polyline of the given half-width (distance to the nearest segment)."""
        out = np.zeros(self.x.shape, dtype=np.float32)
        m = half_width + 2 * self.px  # only pixels near the line can be covered
        cols = self._span(min(xs) - m, max(xs) + m)
        rows = self._span(min(ys) - m, max(ys) + m)
        x, y = self.x[rows, cols], self.y[rows, cols]
        d = np.full(x.shape, np.inf, dtype=np.float32)
        for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
            vx, vy = x1 - x0, y1 - y0
            t = np.clip(((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy + 1e-12), 0, 1)
            d = np.minimum(d, np.hypot(x - x0 - t * vx, y - y0 - t * vy))
        out[rows, cols] = self.soft(d - half_width)
        return out

    def _span(self, lo: float, hi: float) -> slice:
        return slice(max(int(np.floor(lo * self.r)), 0), min(int(np.ceil(hi * self.r)) + 1, self.r))


def _over(image: np.ndarray, colour, alpha: np.ndarray) -> None:
    """Paint `colour` ((3,) or (R, R, 3)) over `image` with coverage `alpha`, in place."""
    rows, cols = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
    if rows.size == 0:
        return
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # touch only the shape's box
    a = alpha[win][..., None]
    colour = np.asarray(colour, dtype=np.float32)
    if colour.ndim == 3:
        colour = colour[win]
    image[win] += a * (colour - image[win])


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a (h, w, C) grid to (size, size, C)."""
    h, w = grid.shape[:2]
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def render_background(seed: int, canvas: _Canvas) -> np.ndarray:
    """Gradients, smooth noise, stripes or shapes in random colours, (R, R, 3) float 0..255."""
    rng = np.random.default_rng(seed)
    r = canvas.r
    kind = rng.integers(5)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == 0:  # linear gradient
        ang = rng.uniform(0, 2 * np.pi)
        t = np.clip((canvas.x - 0.5) * np.cos(ang) + (canvas.y - 0.5) * np.sin(ang) + 0.5, 0, 1)[..., None]
        bg = (1 - t) * c0 + t * c1
    elif kind == 1:  # radial gradient
        t = np.clip(np.hypot(canvas.x - rng.uniform(), canvas.y - rng.uniform()) / rng.uniform(0.5, 1.2), 0, 1)[
            ..., None
        ]
        bg = (1 - t) * c0 + t * c1
    elif kind == 2:  # smooth colour noise
        cells = int(rng.integers(3, 9))
        bg = _upsample(rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32), r)
    elif kind == 3:  # stripes
        ang, freq = rng.uniform(0, np.pi), rng.uniform(3, 12)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (canvas.x * np.cos(ang) + canvas.y * np.sin(ang)))
        bg = (1 - s[..., None]) * c0 + s[..., None] * c1
    else:  # flat colour under shapes
        bg = np.broadcast_to(c0, (r, r, 3))
    bg = np.array(bg, dtype=np.float32)
    for _ in range(int(rng.integers(0, 7))):  # random circles and rectangles on top
        colour = rng.uniform(0, 255, 3)
        x, y, s = rng.uniform(), rng.uniform(), rng.uniform(0.04, 0.2)
        shape = (
            canvas.ellipse(x, y, s, s * rng.uniform(0.5, 1.5))
            if rng.uniform() < 0.5
            else canvas.band(y - s, y + s * rng.uniform(0.3, 1.5), x - s, x + s * rng.uniform(0.3, 1.5))
        )
        _over(bg, colour, shape)
    grain = rng.uniform(0, 10)
    bg += rng.normal(0, 1, bg.shape).astype(np.float32) * grain
    return bg


# -- the face --------------------------------------------------------------------------------
class FaceRenderer:
    """Renders identities at one resolution; reuses the coordinate grids between calls."""

    def __init__(self, resolution: int = 128):
        if resolution < 32 or resolution % 4:
            raise ValueError(f"resolution must be a multiple of 4 and at least 32, got {resolution}")
        self.resolution = resolution
        self.canvas = _Canvas(resolution)

    def render(self, spec: FaceSpec, attributes) -> RenderedFace:
        hair, male, young = check_attributes(attributes)
        background = render_background(spec.background_seed, self.canvas)
        image, mask = self._face(spec, hair, male, young, background)
        return RenderedFace(_to_uint8(image), mask, np.asarray(attributes, dtype=np.float32).copy())

    def render_variants(self, spec: FaceSpec, vectors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The identity under each attribute vector (default: all 12): (V, R, R, 3) uint8 images
        and (V, R, R) float32 masks. The background is drawn once and shared."""
        vectors = all_attribute_vectors() if vectors is None else np.asarray(vectors, dtype=np.float32)
        background = render_background(spec.background_seed, self.canvas)
        images, masks = [], []
        for c in vectors:
            hair, male, young = check_attributes(c)
            img, m = self._face(spec, hair, male, young, background)
            images.append(_to_uint8(img))
            masks.append(m)
        return np.stack(images), np.stack(masks)

    def _face(self, spec: FaceSpec, hair_index: int, male: bool, young: bool, background: np.ndarray):
        cv, L = self.canvas, spec.layout
        image = background.copy()
        fg = np.zeros((cv.r, cv.r), dtype=np.float32)
        hair = spec.hair[hair_index]
        skin = spec.skin.copy()
        if not young:  # older skin: paler and greyer
            grey = skin.mean()
            skin = (1 - OLD_DESATURATION) * skin + OLD_DESATURATION * grey + 8

        def paint(colour, alpha, foreground: bool = True):
            _over(image, colour, alpha)
            if foreground:  # coverage composes like alpha: fg over fg
                fg[:] = fg + alpha * (1 - fg)

        # Back layer: long hair (female) framing the face down to the chin.
        if not male:
            back = cv.ellipse(L.cx, L.cy - 0.02 * L.b, 1.38 * L.a, 1.14 * L.b)
            back *= cv.soft(cv.y - (L.cy + 1.02 * L.b))  # cut straight below the chin
            paint(hair, back)
        # Neck and ears.
        paint(skin * 0.86, cv.band(L.cy + 0.5 * L.b, 1.2, L.cx - 0.45 * L.a, L.cx + 0.45 * L.a))
        for side in (-1, 1):
            paint(skin * 0.93, cv.ellipse(L.cx + side * 0.98 * L.a, L.eye_y + 0.15 * L.b, 0.16 * L.a, 0.24 * L.b))
        # Face: the lower half squarer for men.
        upper = cv.ellipse(L.cx, L.cy, L.a, L.b)
        lower = cv.ellipse(L.cx, L.cy, L.a, L.b, power=2.9 if male else 2.0)
        face = np.where(cv.y < L.cy, upper, lower)
        paint(skin, face)
        if not young:
            self._wrinkles(spec, skin, face, paint)
        # Beard and moustache (male): cover the jaw below the cheeks, around the mouth.
        if male:
            tex = np.random.default_rng(spec.texture_seed).normal(0, 1, (cv.r, cv.r)).astype(np.float32)
            beard_colour = BEARD_SHADE * hair[None, None, :] * (1 + 0.08 * tex[..., None])
            beard = face * cv.soft(L.cy + 0.24 * L.b - cv.y)
            moustache = cv.ellipse(L.cx, L.mouth_y - 0.1 * L.b, 0.36 * L.a, 0.07 * L.b)
            paint(beard_colour, np.maximum(beard, moustache * face))
        # Eyes, brows, nose, mouth.
        for side in (-1, 1):
            ex = L.cx + side * L.eye_dx
            paint(np.array([245, 245, 240]), cv.ellipse(ex, L.eye_y, 0.2 * L.a, 0.085 * L.b))
            paint(spec.iris, cv.ellipse(ex, L.eye_y, 0.085 * L.a, 0.085 * L.b))
            paint(np.array([15, 12, 12]), cv.ellipse(ex, L.eye_y, 0.04 * L.a, 0.04 * L.b))
            brow_h = (0.07 if male else 0.04) * L.b
            paint(hair * 0.8, cv.ellipse(ex, L.brow_y, 0.26 * L.a, brow_h))
        paint(skin * 0.8, cv.ellipse(L.cx, L.cy + 0.14 * L.b, 0.1 * L.a, 0.05 * L.b))
        lips = np.array([150, 85, 80], dtype=np.float32) if male else spec.lips
        paint(lips, cv.ellipse(L.cx, L.mouth_y, 0.3 * L.a, 0.065 * L.b))
        # Hair on top: the crown down to a rounded fringe.
        crown_h = 1.06 if male else 1.1
        cap = cv.ellipse(L.cx, L.cy - 0.06 * L.b, (1.08 if male else 1.14) * L.a, crown_h * L.b)
        line = L.hairline + L.hairline_curve * ((cv.x - L.cx) / L.a) ** 2 * 4
        above = cv.soft(cv.y - line)
        side_limit = cv.soft(cv.y - (L.eye_y - (0.05 if male else -0.3) * L.b))
        cap = cap * np.maximum(above, (1 - face) * side_limit)
        paint(hair, cap)
        return image, fg

    def _wrinkles(self, spec: FaceSpec, skin: np.ndarray, face: np.ndarray, paint) -> None:
        cv, L = self.canvas, spec.layout
        w = LINE_HALF_WIDTH
        lines = np.zeros_like(face)
        xs = np.linspace(L.cx - 0.5 * L.a, L.cx + 0.5 * L.a, 9)
        for k in range(3):  # forehead lines between the hairline and the brows
            y = L.hairline + (k + 1) * (L.brow_y - L.hairline) / 4
            ys = y + 0.015 * np.cos((xs - L.cx) / L.a * np.pi)
            lines = np.maximum(lines, cv.curve(xs, ys, w))
        for side in (-1, 1):
            ex = L.cx + side * (L.eye_dx + 0.24 * L.a)
            for k in (-1, 0, 1):  # crow's feet
                lines = np.maximum(
                    lines,
                    cv.curve(np.array([ex, ex + side * 0.14 * L.a]), np.array([L.eye_y, L.eye_y + k * 0.08 * L.b]), w),
                )
            # nasolabial fold from beside the nose to the corner of the mouth
            lines = np.maximum(
                lines,
                cv.curve(
                    np.array([L.cx + side * 0.2 * L.a, L.cx + side * 0.32 * L.a, L.cx + side * 0.36 * L.a]),
                    np.array([L.cy + 0.12 * L.b, L.cy + 0.3 * L.b, L.mouth_y + 0.06 * L.b]),
                    w,
                ),
            )
        paint(skin * WRINKLE_SHADE, lines * face, foreground=False)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def identity_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for identity `index` of a split; splits never share identities."""
    split_id = {"train": 0, "val": 1, "test": 2}.get(split)
    if split_id is None:
        raise ValueError(f"unknown split {split!r}; use train, val or test")
    return np.random.default_rng([int(seed), split_id, int(index)])


def make_identity(seed: int, split: str, index: int) -> FaceSpec:
    return sample_identity(identity_rng(seed, split, index))
