"""Seeded pools of synthetic faces: every identity under all 12 attribute vectors.

Identity `i` of a split is drawn from ``(seed, split, i)`` alone, so a pool is the same whether
it is rendered in one process or many, in one call or in chunks.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .faces import FaceRenderer, FaceSpec, Layout, all_attribute_vectors, make_identity

log = logging.getLogger(__name__)


@dataclass
class FacePool:
    """images (N, V, R, R, 3) uint8; masks (N, V, R, R) uint8 (coverage x 255);
    vectors (V, 5) float32, CelebA order; layouts: one per identity."""

    images: np.ndarray
    masks: np.ndarray
    vectors: np.ndarray
    layouts: list[Layout]
    specs: list[FaceSpec]

    def __len__(self) -> int:
        return self.images.shape[0]


def _render_chunk(args: tuple[int, str, int, int, int]):
    seed, split, start, count, resolution = args
    renderer = FaceRenderer(resolution)
    images, masks, specs = [], [], []
    for i in range(start, start + count):
        spec = make_identity(seed, split, i)
        img, m = renderer.render_variants(spec)
        images.append(img)
        masks.append(np.rint(m * 255).astype(np.uint8))
        specs.append(spec)
    return np.stack(images), np.stack(masks), specs


def render_pool(
    seed: int, split: str, count: int, resolution: int, workers: int | None = None, start: int = 0
) -> FacePool:
    """Identities `start .. start+count-1` of `split`, each under all 12 attribute vectors."""
    if count < 1:
        raise ValueError("count must be at least 1")
    workers = max(1, min(workers or os.cpu_count() or 1, count))
    chunk = max(1, -(-count // (workers * 4)))
    jobs = [(seed, split, s, min(chunk, start + count - s), resolution) for s in range(start, start + count, chunk)]
    if workers == 1:
        parts = [_render_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    specs = [s for p in parts for s in p[2]]
    log.info("rendered %d identities x 12 variants at %d px (%s split)", count, resolution, split)
    return FacePool(
        images=np.concatenate([p[0] for p in parts]),
        masks=np.concatenate([p[1] for p in parts]),
        vectors=all_attribute_vectors(),
        layouts=[s.layout for s in specs],
        specs=specs,
    )


@dataclass
class HeldOutFace:
    """One test face: the identity's layout, its attribute vector and the rendering."""

    layout: Layout
    attributes: np.ndarray  # (5,) float32
    image: np.ndarray  # (R, R, 3) uint8
    mask: np.ndarray  # (R, R) float32


def held_out_faces(seed: int, count: int, resolution: int, start: int = 0) -> list[HeldOutFace]:
    """`count` test-split identities, each under one attribute vector drawn from its seed."""
    renderer = FaceRenderer(resolution)
    vectors = all_attribute_vectors()
    out = []
    for i in range(start, start + count):
        spec = make_identity(seed, "test", i)
        c = vectors[np.random.default_rng([int(seed), 3, i]).integers(len(vectors))]
        face = renderer.render(spec, c)
        out.append(HeldOutFace(spec.layout, c.copy(), face.image, face.mask))
    return out
