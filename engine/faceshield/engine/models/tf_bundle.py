"""A reader for TensorFlow checkpoints ("tensor bundles"), pure Python and NumPy.

`Model.save_weights(path)` in TensorFlow 2 writes ``path.index`` and ``path.data-00000-of-00001``.
This reader follows the formats as TensorFlow documents them (tensorflow/core/util/tensor_bundle,
tensorflow/core/lib/io/table_format.txt, LevelDB's table_format.md), written from their
description; TensorFlow itself is never needed:

- the index is an SSTable (LevelDB's table): data blocks, a meta-index block, an index block and a
  48-byte footer (two block handles, each two varints, zero padding, then the magic number
  0xdb4775248b80fb57). Each block is followed by a 5-byte trailer (compression type, CRC). A
  block holds entries ``shared, non_shared, value_length`` (varints), the key's new suffix and the
  value (keys are prefix-compressed against the previous one), then restart offsets (uint32 each)
  and their count (uint32): entries at a restart offset share nothing with the key before them.
- the index's values are protocol buffers: the key "" holds a BundleHeaderProto (1: num_shards,
  2: endianness, 0 little), every other key (a variable's name) a BundleEntryProto (1: dtype,
  2: shape, a TensorShapeProto of 2: dim {1: size}, 3: shard_id, 4: offset, 5: size,
  6: crc32c, 7: slices). Decoded here by hand: varints and length-delimited fields suffice.
- a tensor's bytes are ``size`` bytes at ``offset`` in its shard, little-endian, row-major.

Only what plain Keras weights need is read: one shard, no compression, numeric dtypes, whole
(unsliced) variables. Strings (the object graph TensorFlow stores beside the weights) are listed
but not decoded. CRCs are not checked: callers pin each file by SHA-256, which covers every byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ModelLoadError

MAGIC = 0xDB4775248B80FB57
FOOTER = 48  # two handles of at most 2 x 10 bytes, padded to 40, then the 8-byte magic
TRAILER = 5  # after each block: 1 byte compression type, 4 bytes masked CRC32C
# TensorFlow's DataType enum (types.proto) for the numeric dtypes a weights file holds.
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 6: "i1", 9: "<i8", 10: "?", 19: "<f2"}
DT_STRING = 7


class TfBundleError(ModelLoadError):
    """The bytes are not a tensor bundle this reader understands; says what and where."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one variable lies: dtype (TensorFlow's enum: 1 float32), shape, shard, byte range."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    sliced: bool = False


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at `pos`: (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise TfBundleError(f"truncated or overlong varint at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a serialized protocol buffer message: an int for varint and
    fixed-width fields, bytes for length-delimited ones (strings, sub-messages, packed arrays)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:  # 3/4: groups, unused by these messages
            raise TfBundleError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(buf):
            raise TfBundleError(f"protobuf field {number} runs past the end of its message")
        yield number, value


def _handle(buf: bytes, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _block(table: bytes, handle: tuple[int, int]) -> bytes:
    offset, size = handle
    if offset + size + TRAILER > len(table):
        raise TfBundleError(f"block at {offset} (+{size}) runs past the end of the index ({len(table)} bytes)")
    if table[offset + size] != 0:  # TensorFlow writes bundles uncompressed; 1 would be Snappy
        raise TfBundleError(f"block at {offset} is compressed (type {table[offset + size]}); unsupported")
    return table[offset : offset + size]


def block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each entry of one block, in order, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise TfBundleError("block too short for its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts  # where entries end and the restart array begins
    if limit < 0:
        raise TfBundleError(f"block claims {restarts} restart points; it has {len(block)} bytes")
    starts = set(struct.unpack_from(f"<{restarts}I", block, limit))
    pos, key = 0, b""
    while pos < limit:
        at = pos
        shared, pos = _varint(block, pos)
        fresh, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        if at in starts and shared:
            raise TfBundleError(f"entry at restart point {at} shares {shared} bytes with the key before it")
        if shared > len(key) or pos + fresh + length > limit:
            raise TfBundleError(f"garbled block entry at byte {at}")
        key = key[:shared] + block[pos : pos + fresh]
        pos += fresh
        yield key, block[pos : pos + length]
        pos += length


def table_items(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable, in key order: the index block's handles, then each data block."""
    if len(table) < FOOTER or int.from_bytes(table[-8:], "little") != MAGIC:
        raise TfBundleError("not an SSTable (no table magic number at the end of the index file)")
    footer = table[-FOOTER:]
    _meta, pos = _handle(footer, 0)
    index, _ = _handle(footer, pos)
    for _last_key, value in block_entries(_block(table, index)):
        handle, _ = _handle(value, 0)
        yield from block_entries(_block(table, handle))


def _shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in proto_fields(buf):
        if number == 2 and isinstance(value, bytes):  # dim {size: 1}; an absent size is 0
            dims.append(next((v for n, v in proto_fields(value) if n == 1 and isinstance(v, int)), 0))
        elif number == 3 and value:
            raise TfBundleError("a tensor of unknown rank")
    return tuple(dims)


def bundle_entries(index: bytes) -> dict[str, BundleEntry]:
    """The variables a bundle's ``.index`` file describes, by name (the header checked: one shard,
    little-endian)."""
    entries = {}
    for key, value in table_items(index):
        fields = list(proto_fields(value))
        if key == b"":
            header = {n: v for n, v in fields if isinstance(v, int)}
            if header.get(1, 1) != 1 or header.get(2, 0) != 0:
                raise TfBundleError(f"bundle of {header.get(1)} shards, endianness {header.get(2, 0)}: unsupported")
            continue
        ints = {n: v for n, v in fields if isinstance(v, int)}
        blobs = {n: v for n, v in fields if isinstance(v, bytes)}
        name = key.decode()
        entries[name] = BundleEntry(
            name=name,
            dtype=ints.get(1, 0),
            shape=_shape(blobs.get(2, b"")),
            shard=ints.get(3, 0),
            offset=ints.get(4, 0),
            size=ints.get(5, 0),
            sliced=7 in blobs,
        )
    return entries


def read_tensor(entry: BundleEntry, data: bytes) -> np.ndarray:
    """One variable's array (a copy) from its shard's bytes."""
    if entry.sliced or entry.shard != 0:
        raise TfBundleError(f"{entry.name}: partitioned variables (slices, other shards) are unsupported")
    if entry.dtype not in DTYPES:
        raise TfBundleError(f"{entry.name}: dtype {entry.dtype} is not a numeric dtype this reader decodes")
    dtype = np.dtype(DTYPES[entry.dtype])
    count = int(np.prod(entry.shape, dtype=np.int64))
    if entry.size != count * dtype.itemsize or entry.offset + entry.size > len(data):
        raise TfBundleError(f"{entry.name}: {entry.size} bytes at {entry.offset} do not hold {entry.shape} {dtype}")
    return np.frombuffer(data, dtype, count, entry.offset).reshape(entry.shape).copy()


def read_bundle(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """Every numeric variable of a one-shard bundle, by name (strings left out)."""
    return {name: read_tensor(e, data) for name, e in bundle_entries(index).items() if e.dtype != DT_STRING}
