"""Helpers shared by tests: tiny seeded models and masks. Nothing is downloaded."""

from __future__ import annotations

import torch

from faceshield.engine.models.stargan import Generator

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
ASTRONAUT = "assets/astronaut.png"


def tiny_generator(seed: int = 0, conv_dim: int = 8, repeat_num: int = 2, c_dim: int = 5) -> Generator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = Generator(conv_dim=conv_dim, c_dim=c_dim, repeat_num=repeat_num)
    return g.eval().requires_grad_(False)


def ellipse_mask(h: int, w: int, cy: float = 0.45, cx: float = 0.5, ry: float = 0.3, rx: float = 0.22) -> torch.Tensor:
    """A face-shaped soft-edged mask in [0, 1] of shape (h, w)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return (1.0 - d).clamp(0, 1).sqrt()


def png_from_samples(samples, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG written by hand from (H, W, C) or (H, W) samples, at any bit depth and colour type
    (Pillow cannot write 16-bit RGB, RGBA or grey+alpha PNGs). Unfiltered rows, one IDAT."""
    import struct
    import zlib

    import numpy as np

    samples = np.asarray(samples)
    height, width = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = samples.astype(dtype).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_tiny_model_set(
    dest,
    resolution: int = 32,
    *,
    name: str = "tiny",
    version: str = "1",
    generator: bytes | None = None,
    saliency: bytes | None = None,
    saliency_parameters: dict | None = None,
    **manifest_fields,
):
    """A model set directory holding a tiny seeded generator (its TorchScript bytes may be given)
    and, unless saliency ONNX bytes are given, no saliency model (methods pgd and ifgsm), for
    commands run with `--models DIR`, in this process or another."""
    from faceshield.engine import modelsets

    gen = generator if generator is not None else modelsets.export_generator(tiny_generator(), resolution, ATTRS)[0]
    manifest = modelsets.build_manifest(
        name=name,
        version=version,
        resolution=resolution,
        attributes=ATTRS,
        generator_bytes=gen,
        generator_parameters={"conv_dim": 8, "c_dim": 5, "repeat_num": 2},
        generator_source={"test": True},
        saliency_bytes=saliency,
        saliency_parameters=saliency_parameters,
        produced_by={"tool": "test"},
        **manifest_fields,
    )
    files = {modelsets.GENERATOR_FILE: gen}
    if saliency is not None:
        files[modelsets.SALIENCY_FILE] = saliency
    return modelsets.write_model_set(dest, manifest, files)


def _cpu_precision() -> str:
    import torch

    from faceshield.engine.execution import choose_precision

    return choose_precision("auto", torch.device("cpu"))


CPU_PRECISION = _cpu_precision()  # what "auto" picks here: bf16 on a CPU with native bf16, else fp32
