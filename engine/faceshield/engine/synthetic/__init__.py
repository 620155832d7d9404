"""Procedural synthetic faces with ground truth (attributes, foreground mask), and detectors that
read the attributes back from pixels. They train and measure the demo model pair; nothing here
is a face of a real person. `synthetic.evaluate` holds the demo pair's figures."""

from .dataset import FacePool, HeldOutFace, held_out_faces, render_pool
from .faces import (
    ATTRIBUTES,
    FaceRenderer,
    FaceSpec,
    Layout,
    RenderedFace,
    all_attribute_vectors,
    make_identity,
    sample_attributes,
    sample_identity,
)
from .measure import Measurement, measure, regions, target_hit

__all__ = [
    "ATTRIBUTES",
    "FacePool",
    "FaceRenderer",
    "FaceSpec",
    "HeldOutFace",
    "Layout",
    "Measurement",
    "RenderedFace",
    "all_attribute_vectors",
    "held_out_faces",
    "make_identity",
    "measure",
    "regions",
    "render_pool",
    "sample_attributes",
    "sample_identity",
    "target_hit",
]
