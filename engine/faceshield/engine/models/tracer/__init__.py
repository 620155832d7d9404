"""TRACER salient-object detection (TE-0..TE-7): official-checkpoint compatible, ONNX-exportable."""

from .export import SaliencyGraph, export_onnx
from .model import TRACER, build_tracer, calibrate_batchnorm, half_state_dict, load_tracer
from .variants import VARIANTS, TracerVariant, get_variant

__all__ = [
    "TRACER",
    "VARIANTS",
    "SaliencyGraph",
    "TracerVariant",
    "build_tracer",
    "calibrate_batchnorm",
    "export_onnx",
    "get_variant",
    "half_state_dict",
    "load_tracer",
]
