"""Streaming writer of ONNX external weights (``model.onnx.data``).

Each initializer is appended to the data file as soon as it is packed, and only a small
``TensorProto`` that points into the file is kept. Peak memory therefore stays at about one
layer's weights instead of the whole model (which matters once 7B GGUFs are imported).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper

ALIGNMENT = 64
"""Byte alignment of every tensor in the data file, so ORT can memory-map it directly."""


class ExternalDataWriter:
    """Append numpy arrays to one external-data file and hand back ONNX initializers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh: BinaryIO = open(self.path, "wb")
        self._offset = 0

    def add(self, name: str, array: np.ndarray) -> TensorProto:
        """Write ``array`` and return an initializer named ``name`` that refers to it."""
        array = np.ascontiguousarray(array)
        pad = (-self._offset) % ALIGNMENT
        if pad:
            self._fh.write(b"\0" * pad)
            self._offset += pad
        data = array.tobytes()
        self._fh.write(data)
        tensor = TensorProto()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.path.name), ("offset", str(self._offset)), ("length", str(len(data)))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self._offset += len(data)
        return tensor

    def close(self) -> None:
        """Flush to disk (fsync): the folder is renamed into place only after this."""
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


def small_tensor(name: str, array: np.ndarray) -> TensorProto:
    """An inline initializer for shapes and scalars (kept in model.onnx itself)."""
    return onnx.numpy_helper.from_array(np.asarray(array), name)
