"""TRACER variants TE-0..TE-7: backbone scaling, input size, decoder taps.

The EfficientNet scaling coefficients and native resolutions are those of EfficientNet-B0..B7
(Tan & Le, 2019). TRACER's official code builds its backbone with the native resolution, and
that resolution fixes every "same" padding (see `layers.SameConv2d`), so it is part of the
architecture even though the model runs at `input_size` (docs/method.md §2).

`block_idx` and `channels` are the official per-variant table (the blocks whose outputs feed
the decoder, and their widths). They are not free parameters: they are the last block of
stages 2, 3, 5 and 7 of the scaled backbone, which `efficientnet.stage_ends` derives and a test
checks against this table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import InvalidInputError

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in filters, out filters).
# Every stage has squeeze-and-excitation with ratio 0.25 and identity skips.
B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
SE_RATIO = 0.25
STEM_FILTERS = 32
DEPTH_DIVISOR = 8
BACKBONE_BN_EPS = 1e-3  # TensorFlow's EfficientNet epsilon; the decoder's norms keep PyTorch's 1e-5
BACKBONE_BN_MOMENTUM = 0.01

# Preprocessing of the official weights: ImageNet statistics (docs/method.md §2).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Decoder hyperparameters, identical for every variant in the official configuration.
RFB_CHANNELS = (32, 64, 128)
FREQUENCY_RADIUS = 16  # high-pass radius of the edge module, in frequency bins
GAMMA = 0.1  # channel confidence ratio: the quantile below which channels are zeroed
DENOISE = 0.93  # background-ratio threshold in object attention


@dataclass(frozen=True)
class TracerVariant:
    name: str
    arch: int
    width: float
    depth: float
    native_resolution: int
    input_size: int
    block_idx: tuple[int, int, int, int]
    channels: tuple[int, int, int, int]

    def round_filters(self, filters: int) -> int:
        """Scale a filter count by the width coefficient, rounded to a multiple of 8 (never
        more than 10% below the exact product), as EfficientNet does."""
        if not self.width:
            return filters
        exact = filters * self.width
        rounded = max(DEPTH_DIVISOR, int(exact + DEPTH_DIVISOR / 2) // DEPTH_DIVISOR * DEPTH_DIVISOR)
        if rounded < 0.9 * exact:
            rounded += DEPTH_DIVISOR
        return int(rounded)

    def round_repeats(self, repeats: int) -> int:
        return int(math.ceil(self.depth * repeats))


VARIANTS: dict[str, TracerVariant] = {
    v.name: v
    for v in (
        TracerVariant("TE-0", 0, 1.0, 1.0, 224, 320, (2, 4, 10, 15), (24, 40, 112, 320)),
        TracerVariant("TE-1", 1, 1.0, 1.1, 240, 320, (4, 7, 15, 22), (24, 40, 112, 320)),
        TracerVariant("TE-2", 2, 1.1, 1.2, 260, 352, (4, 7, 15, 22), (24, 48, 120, 352)),
        TracerVariant("TE-3", 3, 1.2, 1.4, 300, 384, (4, 7, 17, 25), (32, 48, 136, 384)),
        TracerVariant("TE-4", 4, 1.4, 1.8, 380, 448, (5, 9, 21, 31), (32, 56, 160, 448)),
        TracerVariant("TE-5", 5, 1.6, 2.2, 456, 512, (7, 12, 26, 38), (40, 64, 176, 512)),
        TracerVariant("TE-6", 6, 1.8, 2.6, 528, 576, (8, 14, 30, 44), (40, 72, 200, 576)),
        TracerVariant("TE-7", 7, 2.0, 3.1, 600, 640, (10, 17, 37, 54), (48, 80, 224, 640)),
    )
}


def get_variant(name: str | int) -> TracerVariant:
    """`"TE-5"`, `"te5"`, `"5"` or `5` -> the TE-5 variant."""
    key = str(name).upper().replace("TE-", "").replace("TE", "").strip()
    for v in VARIANTS.values():
        if str(v.arch) == key:
            return v
    raise InvalidInputError("variant", f"unknown TRACER variant {name!r}; expected one of {', '.join(VARIANTS)}")
