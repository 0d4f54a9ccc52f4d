"""A bounded first look at a GGUF file's header, before the ``gguf`` package parses it.

``gguf.GGUFReader`` believes the counts a file states. For each metadata array element it
makes numpy views and Python lists, so a 1 MB file whose array claims 2**62 elements makes
it allocate until the machine runs out of memory. This scan walks the same header (the
key/value metadata, then the tensor table) with plain ``struct`` reads. It checks that every
count and length fits in the bytes that are left, and that the metadata holds no more
values than :data:`MAX_METADATA_VALUES`. So the reader's memory is proportional to what the
file really holds, with a ceiling, and a hostile or corrupt file is refused in one sentence.

Format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic ``GGUF``, version
(uint32, 2 or 3: the ``gguf`` package reads no other), tensor count and key/value count
(uint64), the key/value
pairs (key: a string; value: a type tag and the value), then one entry per tensor (name,
dimension count, dimensions, type, offset). A string is a uint64 length and that many
bytes. An array is an element type, a uint64 count and the elements.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from archivist.errors import ConversionError

# The most metadata values (array elements counted one by one) a file may hold. A large
# tokenizer's vocabulary (256K tokens, with scores and types) and merges (300K) come to
# about 1.1M; twice that leaves room and bounds the reader to a few hundred MB.
MAX_METADATA_VALUES = 2_500_000
MAX_KEYS = 65_536  # real files have a few dozen
MAX_TENSORS = 1_000_000  # a 405B model has a few thousand
MAX_NESTING = 4  # arrays of arrays; real files nest at most once
MAX_DIMS = 8

# value type -> (struct format, bytes) for the fixed-size scalars
_SCALARS = {0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
            7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8)}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class HeaderSummary:
    """What the scan found: enough to say what a file is before it is parsed."""

    version: int
    keys: int
    tensors: int
    values: int  # metadata values, array elements counted one by one
    header_bytes: int  # where the tensor table ends (tensor data starts after alignment)


class _Scan:
    def __init__(self, data: mmap.mmap | bytes, name: str) -> None:
        self.data = data
        self.size = len(data)
        self.name = name
        self.pos = 0
        self.order = "<"
        self.values = 0

    def fail(self, what: str) -> ConversionError:
        return ConversionError(f"{self.name} is not a readable GGUF file (truncated, corrupt or hostile): {what}")

    def take(self, n: int, what: str) -> int:
        if n < 0 or n > self.size - self.pos:
            raise self.fail(f"{what} needs {n:,} bytes at offset {self.pos:,}, but the file has {self.size:,}")
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        start = self.take(size, what)
        (value,) = struct.unpack_from(self.order + fmt, self.data, start)
        return int(value)

    def string(self, what: str) -> None:
        length = self.unpack("Q", f"the length of {what}")
        self.take(length, what)

    def count_values(self, n: int, what: str) -> None:
        self.values += n
        if self.values > MAX_METADATA_VALUES:
            raise self.fail(f"{what} brings the metadata to over {MAX_METADATA_VALUES:,} values, more than any "
                            "model's tokenizer holds")

    def value(self, kind: int, what: str, depth: int = 0) -> None:
        if kind in _SCALARS:
            self.count_values(1, what)
            self.take(_SCALARS[kind][1], what)
        elif kind == _STRING:
            self.count_values(1, what)
            self.string(what)
        elif kind == _ARRAY:
            if depth >= MAX_NESTING:
                raise self.fail(f"{what} nests arrays deeper than {MAX_NESTING}")
            item = self.unpack("I", f"the element type of {what}")
            count = self.unpack("Q", f"the length of {what}")
            if item in _SCALARS:  # fixed-size elements: checked against the bytes left in one step
                self.count_values(count, what)
                self.take(count * _SCALARS[item][1], f"{what} ({count:,} elements)")
            elif item in (_STRING, _ARRAY):
                least = 8 if item == _STRING else 12  # the smallest element: an empty one
                if count * least > self.size - self.pos:
                    raise self.fail(f"{what} claims {count:,} elements, which cannot fit in the "
                                    f"{self.size - self.pos:,} bytes left")
                for _ in range(count):
                    self.value(item, what, depth + 1)
            else:
                raise self.fail(f"{what} has elements of unknown type {item}")
        else:
            raise self.fail(f"{what} has an unknown value type {kind}")


def scan_header(path: Path) -> HeaderSummary:
    """Check ``path``'s header against its size and the limits above; raise
    :class:`~archivist.errors.ConversionError` naming the first thing that does not fit."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size < 16:
            raise ConversionError(f"{path.name} is not a readable GGUF file: it has only {size} bytes")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _scan(data, path.name)


def _scan(data: mmap.mmap | bytes, name: str) -> HeaderSummary:
    s = _Scan(data, name)
    if bytes(data[:4]) != b"GGUF":
        raise ConversionError(f"{name} is not a readable GGUF file: it does not start with 'GGUF'")
    s.pos = 4
    version = s.unpack("I", "the version")
    if version & 0xFFFF == 0:  # written on a big-endian machine
        s.order = ">"
        version = struct.unpack_from(">I", data, 4)[0]
    if version not in (2, 3):
        raise s.fail(f"version {version} is not one Archivist reads (2 or 3)")
    tensors = s.unpack("Q", "the tensor count")
    keys = s.unpack("Q", "the metadata count")
    if keys > MAX_KEYS:
        raise s.fail(f"it claims {keys:,} metadata keys (the limit is {MAX_KEYS:,})")
    if tensors > MAX_TENSORS:
        raise s.fail(f"it claims {tensors:,} tensors (the limit is {MAX_TENSORS:,})")
    for n in range(keys):
        s.string(f"metadata key {n + 1}")
        kind = s.unpack("I", f"the type of metadata value {n + 1}")
        s.value(kind, f"metadata value {n + 1}")
    for n in range(tensors):
        s.string(f"the name of tensor {n + 1}")
        dims = s.unpack("I", f"the dimension count of tensor {n + 1}")
        if dims > MAX_DIMS:
            raise s.fail(f"tensor {n + 1} claims {dims} dimensions (the limit is {MAX_DIMS})")
        s.take(8 * dims + 4 + 8, f"the shape, type and offset of tensor {n + 1}")
    return HeaderSummary(version, keys, tensors, s.values, s.pos)
