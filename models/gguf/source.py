"""The GGUF file being converted: opened, checked (checksum, truncation) and queried.

Every way the input can be wrong surfaces here as one ``ConversionError`` sentence, so the
rest of the converter can assume a well-formed file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as GGMLType
from gguf import GGUFReader, ReaderTensor
from gguf.constants import GGML_QUANT_SIZES

from archivist.errors import ConversionError

from .header import scan_header


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB models do not sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class GGUFSource:
    """A validated, memory-mapped GGUF file.

    Construction checks that the file exists, matches ``expected_sha256`` when given, parses,
    and that every tensor's bytes lie inside the file (a truncated download otherwise shows
    up much later as a reshape error deep inside numpy).
    """

    def __init__(self, path: Path, expected_sha256: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConversionError(f"GGUF file not found: {self.path}")
        self.sha256 = file_sha256(self.path)
        if expected_sha256 is not None and self.sha256 != expected_sha256.lower():
            raise ConversionError(
                f"Checksum mismatch for {self.path.name}: expected sha256 {expected_sha256}, got {self.sha256}."
            )
        size = self.path.stat().st_size
        scan_header(self.path)  # bounded: GGUFReader trusts the counts a file states
        try:
            self.reader = GGUFReader(self.path, "r")
        except Exception as exc:  # gguf raises ValueError, IndexError, struct errors...
            raise ConversionError(f"{self.path.name} is not a readable GGUF file (truncated or corrupt): {exc}") from exc
        self.tensors: dict[str, ReaderTensor] = {t.name: t for t in self.reader.tensors}
        for tensor in self.reader.tensors:
            end = tensor.data_offset + _tensor_nbytes(tensor)
            if end > size or tensor.data.nbytes < _tensor_nbytes(tensor):
                raise ConversionError(
                    f"{self.path.name} is truncated: tensor {tensor.name} ends at byte {end} but the file has {size}."
                )

    def field(self, key: str, default: Any = None) -> Any:
        """A metadata value as a Python object (str, int, float, list), or ``default``."""
        f = self.reader.fields.get(key)
        if f is None:
            return default
        return f.contents()

    def require(self, key: str) -> Any:
        """A metadata value the conversion cannot do without."""
        value = self.field(key)
        if value is None:
            raise ConversionError(f"{self.path.name} lacks the metadata key {key!r}.")
        return value

    @property
    def architecture(self) -> str:
        return str(self.require("general.architecture"))

    def tensor(self, name: str) -> ReaderTensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise ConversionError(f"{self.path.name} lacks the tensor {name!r}.") from None

    def matrix_shape(self, name: str) -> tuple[int, int]:
        """``(rows, columns)`` = ``(out_features, in_features)`` of a 2-D GGUF tensor."""
        t = self.tensor(name)
        k, n = (int(x) for x in t.shape[:2])
        return n, k

    def vector(self, name: str) -> np.ndarray:
        """A 1-D float tensor (norm weights) as float32."""
        t = self.tensor(name)
        if t.tensor_type not in (GGMLType.F32, GGMLType.F16):
            raise ConversionError(f"Unsupported tensor type {t.tensor_type.name} for {name} (expected F32 or F16).")
        return np.asarray(t.data).astype(np.float32).reshape(-1)


def _tensor_nbytes(tensor: ReaderTensor) -> int:
    block, type_size = GGML_QUANT_SIZES[tensor.tensor_type]
    return int(tensor.n_elements) // block * type_size
