"""Saliency runners: M_sm (docs/method.md §2) from TRACER, over ONNX Runtime or PyTorch.

Both runners have one interface, the one `Protector` expects of a saliency model:

    >>> saliency = build_default_saliency()
    >>> m_sm = saliency(images)   # (N, 3, h, w) RGB in [0, 1] -> (N, 1, h, w) in [0, 1]

Where each step happens:
  - validation and resizing to the model's input size S happen here, in PyTorch (bilinear,
    half-pixel centres, no antialiasing: what the official OpenCV `Resize` does);
  - ImageNet normalization, the network and the final sigmoid are inside the ONNX graph
    (`models.tracer.export`), so the served artifact takes plain [0, 1] RGB;
  - the map comes back at the input's own size h x w (bilinear, antialiased when shrinking),
    which for the engine is the generator's resolution.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import onnx_runtime
from .defaults import EMBEDDED_SEED
from .errors import InvalidInputError, ModelLoadError
from .models.tracer import TRACER, SaliencyGraph, build_tracer, export_onnx

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
DEFAULT_MAX_BATCH = 8  # images per network call; bounds peak memory for large batches

# The embedded default (see default_models): TE-0's architecture with fixed-seed weights, run at
# 128 instead of TE-0's 320 because the default generator works at 128 (a larger input would
# only upsample the crop) and it keeps start-up and each call well under a second on a CPU.
DEFAULT_VARIANT = "TE-0"
DEFAULT_INPUT_SIZE = 128
_ORT_DEFAULT_LOG_SEVERITY = 2  # onnxruntime's own default (warning)


def check_images(images: object) -> torch.Tensor:
    """Validate a batch for a saliency model: float (N, 3, h, w), N >= 1, finite values."""
    if not isinstance(images, torch.Tensor):
        raise InvalidInputError("image", f"expected a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise InvalidInputError("image", f"expected a 4-D batch (N, 3, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise InvalidInputError("image", "empty batch: pass at least one image")
    if c != 3:
        raise InvalidInputError("image", f"expected 3 (RGB) channels, got {c}; convert grey or RGBA images to RGB")
    if h == 0 or w == 0:
        raise InvalidInputError("image", f"image has zero size {h}x{w}")
    if not images.is_floating_point():
        raise InvalidInputError("image", f"expected float values in [0, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise InvalidInputError("image", "values must be finite (found NaN or infinity)")
    return images


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with half-pixel centres; antialiased only when shrinking."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = images.shape[-2] > size[0] or images.shape[-1] > size[1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrink)


class _SaliencyRunner:
    """Shared call path: validate, split into chunks, resize in, run, resize out."""

    name: str
    runtime: str  # what runs the graph: "onnxruntime" or "torch" (GetModelInfo's Execution)
    providers: list[str]
    input_size: int
    max_batch: int

    def _run(self, batch: torch.Tensor) -> torch.Tensor:  # (n, 3, S, S) -> (n, 1, S, S), CPU or device
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) RGB in [0, 1] -> M_sm (N, 1, h, w) in [0, 1], float32 on the input's device.

        Values outside [0, 1] are clamped. Raises `InvalidInputError` (field "image") for a
        wrong shape, channel count, dtype, an empty batch or non-finite values.
        """
        images = check_images(images)
        h, w = images.shape[-2:]
        s = self.input_size
        outs = []
        with torch.no_grad():
            for chunk in images.split(self.max_batch):
                x = resize(chunk.detach().float().clamp(0, 1), (s, s))
                y = self._run(x).float()
                outs.append(resize(y, (h, w)).to(images.device))
        return torch.cat(outs).clamp_(0, 1)


def cuda_provider_listed(providers: Sequence[str] | None = None) -> bool:
    """Whether a session would try ONNX Runtime's CUDA provider: named in `providers`, or by
    default, listed by onnxruntime (which says nothing about whether it can start)."""
    if providers is not None:
        return CUDA_PROVIDER in providers
    ort = onnx_runtime.load()

    return CUDA_PROVIDER in ort.get_available_providers()


def _create_session(model: bytes | str, providers: Sequence[str] | None, threads: int | None):
    """An InferenceSession on CUDA when asked (default: when listed) and it actually starts,
    else on CPU. onnxruntime-gpu lists CUDA even where its libraries or GPU are missing; the
    failed attempt is then silenced and the session runs on CPU."""
    ort = onnx_runtime.load()

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if providers is None:
        providers = [CUDA_PROVIDER, CPU_PROVIDER] if cuda_provider_listed() else [CPU_PROVIDER]
    providers = list(providers)
    if CPU_PROVIDER not in providers:
        providers.append(CPU_PROVIDER)
    try:
        if providers[0] == CPU_PROVIDER:
            return ort.InferenceSession(model, options, providers=[CPU_PROVIDER])
        # A failed CUDA start is reported through the process-wide logger, not the session's:
        # silence it for this attempt only, then restore onnxruntime's default level.
        with _ORT_LOGGER_LOCK:
            ort.set_default_logger_severity(4)
            try:
                return ort.InferenceSession(model, options, providers=providers)
            except Exception as exc:  # the provider itself failed to start: run on CPU
                log.info("ONNX Runtime could not start %s (%s); using the CPU provider", providers[0], exc)
            finally:
                ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)
        return ort.InferenceSession(model, options, providers=[CPU_PROVIDER])
    except Exception as exc:
        raise ModelLoadError(
            f"not a loadable ONNX saliency model ({exc.__class__.__name__}: {str(exc)[:300]})"
        ) from None


_ORT_LOGGER_LOCK = threading.Lock()


class TracerSaliency(_SaliencyRunner):
    """TRACER's ONNX graph (`models.tracer.export_onnx`) over ONNX Runtime.

    Args:
        model: ONNX model bytes, or a path to a `.onnx` file.
        name: reported name (default: from the graph's metadata, e.g. "TRACER TE-5").
        providers: execution providers to try in order (default: CUDA when onnxruntime lists
            it, then CPU). `self.providers` is what the session really runs on.
        max_batch: images per session run.
        threads: intra-op threads for the CPU provider (default: onnxruntime's choice).

    Attributes: `name`, `providers`, `input_size` (S, read from the graph), `metadata`.
    """

    runtime = "onnxruntime"

    def __init__(
        self,
        model: bytes | str | Path,
        *,
        name: str | None = None,
        providers: Sequence[str] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        threads: int | None = None,
    ):
        if isinstance(model, Path):
            model = str(model)
        if isinstance(model, str) and not Path(model).is_file():
            raise ModelLoadError(f"saliency model {model} does not exist or is not a file")
        self.session = _create_session(model, providers, threads)
        self.providers = list(self.session.get_providers())
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelLoadError(
                f"saliency graph must have one input and an output, has {len(inputs)} and {len(outputs)}"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ModelLoadError(f"saliency graph input must be (N, 3, S, S) with a fixed S, is {shape}")
        self.input_size = int(shape[2])
        self._input_name, self._output_name = inputs[0].name, outputs[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        variant = self.metadata.get("faceshield.variant", "")
        self.name = name or (f"TRACER {variant}".strip() if variant else "onnx-saliency")
        self.max_batch = max(1, int(max_batch))
        log.info("saliency model %s on %s (input %d)", self.name, ", ".join(self.providers), self.input_size)

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(batch.cpu().numpy(), dtype=np.float32)
        (y,) = self.session.run([self._output_name], {self._input_name: x})
        return torch.from_numpy(y)


class TorchSaliency(_SaliencyRunner):
    """The same computation in PyTorch, on any device (for GPU machines without a working
    onnxruntime-gpu, and as the reference the ONNX graph is tested against).

    Args:
        model: a `TRACER` (its `input_size` is used) or a `SaliencyGraph`.
        device: where to run (default: the model's device).
    """

    runtime = "torch"

    def __init__(
        self,
        model: TRACER | SaliencyGraph,
        *,
        name: str | None = None,
        device: str | torch.device | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ):
        graph = model if isinstance(model, SaliencyGraph) else SaliencyGraph(model)
        if device is not None:
            graph = graph.to(device)
        self.graph = graph.eval().requires_grad_(False)
        self.device = next(self.graph.parameters()).device
        self.input_size = int(self.graph.input_size)
        self.name = name or f"TRACER {self.graph.tracer.variant.name}"
        self.providers = [f"torch:{self.device.type}"]
        self.max_batch = max(1, int(max_batch))

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.graph(batch.to(self.device))


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the default's small start-up work (one calibration pass, one trace) on one thread.

    On a machine whose cores are shared, a multi-threaded PyTorch pass stalls whenever one of its
    threads loses its core: measured on the 2-core dev box under load, 30 s with two threads
    against 3 s with one. The setting is process-wide, so it is restored right after; other
    threads running PyTorch meanwhile would only run slower, never differently.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _default_tracer(seed: int | None) -> tuple[TRACER, str, int]:
    seed = EMBEDDED_SEED if seed is None else seed
    with _one_torch_thread():
        tracer = build_tracer(DEFAULT_VARIANT, seed=seed, input_size=DEFAULT_INPUT_SIZE, calibrate=True)
    name = f"TRACER {DEFAULT_VARIANT} (embedded, untrained, seed {seed}, input {DEFAULT_INPUT_SIZE})"
    return tracer, name, seed


def build_default_saliency(seed: int | None = None) -> TracerSaliency:
    """The embedded default M_sm model: TE-0's architecture at input 128, weights drawn from a
    fixed seed with batch-norm statistics calibrated on synthetic images, exported to ONNX in
    memory. UNTRAINED: its map is arithmetic, not saliency (see default_models).

    Its session uses one CPU thread: at 128 pixels a call takes tens of milliseconds on one
    core, and a single thread cannot stall on a busy machine."""
    tracer, name, seed = _default_tracer(seed)
    with _one_torch_thread():
        data = export_onnx(tracer, metadata={"faceshield.trained": "false", "faceshield.seed": str(seed)})
    return TracerSaliency(data, name=name, threads=1)


def build_default_torch_saliency(device: str | torch.device | None = None, seed: int | None = None) -> TorchSaliency:
    """The same embedded default, run by PyTorch on `device` (same weights, same map)."""
    tracer, name, _ = _default_tracer(seed)
    return TorchSaliency(tracer, name=name, device=device)
