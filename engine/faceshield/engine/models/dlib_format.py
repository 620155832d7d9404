"""A reader for dlib's serialized DNNs (`dlib::serialize(net)`), pure Python and NumPy.

dlib (Davis E. King, Boost Software License 1.0) writes a network as nested objects; this reader
follows the formats of dlib/serialize.h, dlib/cuda/tensor.h, dlib/dnn/core.h, input.h, layers.h
and loss.h, written from their description, not from their code:

- integer: one control byte (low 4 bits: the byte count n, 0x80: negative), then n
  little-endian bytes of the magnitude;
- float: two integers, mantissa m and exponent e, value m * 2**e (exponents 32000, 32001,
  32002 mean +inf, -inf and NaN);
- bool: the character '1' or '0'; string: an integer length, then its bytes;
- tensor: the integer 2, four integers (num_samples, k, nr, nc), then that many little-endian
  float32; an alias (a view into a layer's one parameter tensor): the integer 1, four integers.

A network is `add_loss_layer` (version, loss details, subnetwork) around nested `add_layer`s,
each of which writes its version, then its subnetwork, then its own details and state. So the
file holds, in order: the loss; one version integer per layer from the output down to the
input (2 for a layer, 1 for a `tag`/`skip` marker, which write nothing else, and 2 or 3 for
the layer on the input); the input layer; then each layer's details in forward order.
Which tag a `tag`/`skip`/`add_prev` names is not stored: the consumer knows the architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError

_INF, _NINF, _NAN = 32000, 32001, 32002
_MAX_ELEMENTS = 1 << 28  # a tensor larger than 1 GiB of float32 is a garbled header, not a layer


class DlibFormatError(ModelLoadError):
    """The bytes are not a dlib network this reader understands (truncated, garbled or another
    layer type); says what was expected and at which byte offset."""


@dataclass(frozen=True)
class DlibLayer:
    """One layer in forward order. kind: the layer's serialization tag without its version
    suffix ("con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"), or "marker" for
    a `tag`/`skip` layer. version: the tag as written ("con_4"). params: the layer's numbers
    (ints, floats and float32 arrays in dlib's shapes)."""

    kind: str
    version: str = ""
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNetwork:
    """loss: its tag and numbers; input: its tag and numbers (mean RGB, size); layers: forward
    order, markers included."""

    loss: dict
    input: dict
    layers: tuple[DlibLayer, ...]


class _Reader:
    def __init__(self, data: bytes, name: str):
        self.data, self.pos, self.name = memoryview(data), 0, name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.pos} of {len(self.data)}")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file ends inside {what} (truncated?)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read_int(self, what: str = "an integer") -> int:
        control = self.take(1, what)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"bad control byte 0x{control:02x} for {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def peek_int(self) -> int | None:
        start = self.pos
        try:
            return self.read_int()
        except DlibFormatError:
            return None
        finally:
            self.pos = start

    def read_float(self, what: str = "a float") -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"{what} in dlib's old text format, which this reader does not read")
        mantissa, exponent = self.read_int(what), self.read_int(what)
        if exponent == _INF:
            return float("inf")
        if exponent == _NINF:
            return float("-inf")
        if exponent == _NAN:
            return float("nan")
        return float(np.ldexp(float(mantissa), exponent))

    def read_bool(self, what: str = "a bool") -> bool:
        ch = bytes(self.take(1, what))
        if ch not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"expected '0' or '1' for {what}, found {ch!r}")
        return ch == b"1"

    def read_string(self, what: str = "a string") -> str:
        n = self.read_int(what)
        if n < 0 or n > 256:
            raise self.fail(f"implausible length {n} for {what}")
        raw = bytes(self.take(n, what))
        if not all(32 <= b < 127 for b in raw):
            self.pos -= n
            raise self.fail(f"{what} is not text: {raw[:24]!r}")
        return raw.decode("ascii")

    def _dims(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.read_int(what) for _ in range(4))
        if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.int64)) > _MAX_ELEMENTS:
            raise self.fail(f"implausible dimensions {dims} for {what}")
        return dims  # type: ignore[return-value]

    def read_tensor(self, what: str = "a tensor") -> np.ndarray:
        if (version := self.read_int(what)) != 2:
            raise self.fail(f"tensor version {version} for {what}, expected 2")
        dims = self._dims(what)
        n = int(np.prod(dims))
        return np.frombuffer(self.take(4 * n, what), dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias(self, what: str = "an alias tensor") -> tuple[int, int, int, int]:
        if (version := self.read_int(what)) != 1:
            raise self.fail(f"alias tensor version {version} for {what}, expected 1")
        return self._dims(what)


def _split(params: np.ndarray, shapes: Sequence[tuple[int, ...]], r: _Reader, what: str) -> list[np.ndarray]:
    flat, out, at = params.reshape(-1), [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[at : at + n].reshape(shape))
        at += n
    if at != flat.size:
        raise r.fail(f"{what}: parameter tensor holds {flat.size} numbers, its views need {at}")
    return out


def _multipliers(r: _Reader, what: str) -> None:
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        r.read_float(what)


def _con(r: _Reader, version: str) -> dict:
    params = r.read_tensor("con parameters")
    num_filters = r.read_int()
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.read_int() for _ in range(6))
    filters, biases = r.read_alias("con filters"), r.read_alias("con biases")
    _multipliers(r, "con multipliers")
    use_bias = r.read_bool("con use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6" and r.read_bool("con use_relu"):
        raise r.fail("con with a fused relu is not supported")
    if filters[0] != num_filters or filters[2:] != (nr, nc) or (use_bias and int(np.prod(biases)) != num_filters):
        raise r.fail(f"con filters {filters} / biases {biases} do not match {num_filters} filters of {nr}x{nc}")
    shapes: list[tuple[int, ...]] = [filters] + ([(num_filters,)] if use_bias else [])
    parts = _split(params, shapes, r, "con")
    bias = parts[1] if use_bias else np.zeros(num_filters, np.float32)
    return dict(weight=parts[0], bias=bias, stride=(stride_y, stride_x), padding=(pad_y, pad_x))


def _affine(r: _Reader, version: str) -> dict:
    params = r.read_tensor("affine parameters")
    gamma, beta = r.read_alias("affine gamma"), r.read_alias("affine beta")
    mode = r.read_int("affine mode")
    if version == "affine_2" and r.read_bool("affine disabled"):
        raise r.fail("a disabled affine layer is not supported")
    if mode != 0 or gamma[0] != 1 or gamma[2:] != (1, 1):
        raise r.fail(f"affine in mode {mode} with gamma {gamma}: only per-channel (conv mode) is supported")
    g, b = _split(params, [gamma, beta], r, "affine")
    return dict(gamma=g.reshape(-1), beta=b.reshape(-1))


def _pool(r: _Reader, version: str) -> dict:
    nr, nc, stride_y, stride_x, pad_y, pad_x = (r.read_int() for _ in range(6))
    return dict(window=(nr, nc), stride=(stride_y, stride_x), padding=(pad_y, pad_x))


def _fc(r: _Reader, version: str) -> dict:
    outputs, inputs = r.read_int(), r.read_int()
    params = r.read_tensor("fc parameters")
    weights, biases = r.read_alias("fc weights"), r.read_alias("fc biases")
    bias_mode = r.read_int("fc bias mode")
    _multipliers(r, "fc multipliers")
    use_bias = r.read_bool("fc use_bias") if version == "fc_3" else True
    shapes: list[tuple[int, ...]] = [(int(np.prod(weights)),)]
    has_bias = bias_mode == 0 and use_bias
    if has_bias and int(np.prod(biases)) != outputs:
        raise r.fail(f"fc biases {biases} do not match {outputs} outputs")
    if has_bias:
        shapes.append((outputs,))
    parts = _split(params, shapes, r, "fc")
    if parts[0].size != inputs * outputs:
        raise r.fail(f"fc weights hold {parts[0].size} numbers, not {inputs} x {outputs}")
    bias = parts[1] if has_bias else None
    return dict(weight=parts[0].reshape(inputs, outputs), bias=bias)  # out = x @ weight (+ bias)


def _relu(r: _Reader, version: str) -> dict:
    if version == "relu_2" and r.read_bool("relu disabled"):
        raise r.fail("a disabled relu layer is not supported")
    return {}


_LAYERS = {
    "con_4": ("con", _con),
    "con_5": ("con", _con),
    "con_6": ("con", _con),
    "affine_": ("affine", _affine),
    "affine_2": ("affine", _affine),
    "relu_": ("relu", _relu),
    "relu_2": ("relu", _relu),
    "max_pool_2": ("max_pool", _pool),
    "avg_pool_2": ("avg_pool", _pool),
    "add_prev_": ("add_prev", lambda r, v: {}),
    "fc_2": ("fc", _fc),
    "fc_3": ("fc", _fc),
}


def _loss(r: _Reader) -> dict:
    if (version := r.read_int("the loss layer's version")) != 1:
        raise r.fail(f"loss layer version {version}, expected 1 (is this a dlib network?)")
    tag = r.read_string("the loss layer's tag")
    if tag == "loss_metric_2":
        return dict(tag=tag, margin=r.read_float(), distance_threshold=r.read_float())
    if tag == "loss_metric_":
        return dict(tag=tag, margin=0.1, distance_threshold=0.75)
    raise r.fail(f"loss layer {tag!r}: only dlib's metric loss is supported")


def _input(r: _Reader) -> dict:
    tag = r.read_string("the input layer's tag")
    if tag != "input_rgb_image_sized":
        raise r.fail(f"input layer {tag!r}: only input_rgb_image_sized is supported")
    mean = tuple(r.read_float("the input's mean") for _ in range(3))
    rows, cols = r.read_int(), r.read_int()
    return dict(tag=tag, mean=mean, size=(rows, cols))


def read_dlib_network(source: str | Path | bytes) -> DlibNetwork:
    """Parses a dlib network with a metric loss and an RGB image input. Raises DlibFormatError
    on anything it does not understand, never returns a partial network."""
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), "dlib network"
    else:
        path = Path(source)
        try:
            data, name = path.read_bytes(), str(path)
        except OSError as e:
            raise DlibFormatError(f"cannot read the dlib network {path}: {e}") from e
    r = _Reader(data, name)
    loss = _loss(r)
    versions: list[int] = []
    while r.peek_int() in (1, 2, 3):
        versions.append(r.read_int())
        if len(versions) > 10_000:
            raise r.fail("no input layer after 10000 layer headers")
    if not versions or versions[-1] not in (2, 3):
        raise r.fail("no layer sits on the input (expected a layer version 2 or 3 before the input)")
    net_input = _input(r)
    layers: list[DlibLayer] = []
    for depth, version in enumerate(reversed(versions)):
        innermost = depth == 0
        if version == 1 and not innermost:
            layers.append(DlibLayer("marker", "tag/skip"))
            continue
        tag = r.read_string("a layer's tag")
        if tag not in _LAYERS:
            raise r.fail(f"unsupported layer {tag!r}")
        kind, parse = _LAYERS[tag]
        params = parse(r, tag)
        for what in ("setup_called", "gradient_input_is_stale", "output_and_gradient_disabled"):
            r.read_bool(f"{tag} {what}")
        r.read_tensor(f"{tag} x_grad")
        r.read_tensor(f"{tag} cached_output")
        if innermost:
            r.read_tensor(f"{tag} grad_final")
            if version == 3:
                r.read_int(f"{tag} sample_expansion_factor")
        else:
            r.read_tensor(f"{tag} params_grad")
        layers.append(DlibLayer(kind, tag, params))
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} unexpected bytes after the network")
    return DlibNetwork(loss=loss, input=net_input, layers=tuple(layers))
