"""Weight packing: GGML block formats turned into the layouts ONNX Runtime kernels read.

Every GGML type the converter understands has one packer here, registered in ``PACKERS``.
A packer keeps the GGUF's numbers exactly: re-quantizing SmolLM2's Q4_1 weights to
symmetric int4 was measured to raise perplexity by about a third, so the converter never
re-rounds a weight, it only re-arranges bits and folds constants.

The target layout is the one of ``com.microsoft.MatMulNBits``: ``B[N, K/block, blob]``
(quantized values, little nibble first for 4 bits), one float scale per block, and the
kernel's implicit zero point ``2**(bits-1)`` (8 for 4 bits, 128 for 8 bits). An explicit
float zero point would also be exact but is about 40x slower on CPU at batch 1, so
asymmetric formats carry their offset in a separate small float matrix (``offsets``)
that the graph multiplies with the block sums of the input.

Adding a GGML type (Q4_0, Q4_K, Q5_K, Q6_K, Q8_0, F16, ...) means writing one function
``(raw: ndarray[uint8 or float], n: int, k: int) -> PackedLinear`` and registering it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType as GGMLType

BLOCK = 32
"""Elements per block in the GGML formats Q4_0, Q4_1 and Q8_0 (and K-quant sub-blocks)."""

QK_K = 256
"""Elements per super-block of the K-quants (Q4_K, Q5_K, Q6_K)."""


@dataclass(frozen=True)
class PackedLinear:
    """A linear layer ``y = x @ W.T`` with ``W[n, k]``, in MatMulNBits form.

    ``quantized`` is ``uint8[n, k/block_size, blob]`` (``None`` for float weights, which then
    sit in ``dense`` as ``float32[n, k]``). ``scales`` is ``float32[n, k/block_size]``.
    ``offsets`` is ``float32[k/block_size, n]`` or ``None``: the per-block constant that
    the symmetric kernel cannot express, applied as ``blocksum(x) @ offsets``.
    """

    n: int
    k: int
    bits: int
    block_size: int
    quantized: np.ndarray | None
    scales: np.ndarray | None
    offsets: np.ndarray | None = None
    dense: np.ndarray | None = None

    def dequantize(self) -> np.ndarray:
        """The float32 ``W[n, k]`` this packing stands for (used by tests and exporters)."""
        if self.dense is not None:
            return self.dense
        assert self.quantized is not None and self.scales is not None
        values = unpack_values(self.quantized, self.bits).astype(np.float32)
        values -= float(1 << (self.bits - 1))
        w = values * self.scales[:, :, None]
        if self.offsets is not None:
            w += self.offsets.T[:, :, None]
        return w.reshape(self.n, self.k)


def unpack_values(quantized: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned values ``uint8[n, blocks, block]`` from a MatMulNBits blob array."""
    if bits == 8:
        return quantized
    low = quantized & 0x0F
    high = quantized >> 4
    return np.stack([low, high], axis=-1).reshape(*quantized.shape[:-1], quantized.shape[-1] * 2)


def _blocks(raw: np.ndarray, n: int, k: int, block_bytes: int) -> np.ndarray:
    """View GGUF rows as ``uint8[n, k/32, block_bytes]`` (rows are the output features)."""
    data = np.ascontiguousarray(raw).view(np.uint8)
    return data.reshape(n, k // BLOCK, block_bytes)


def pack_q4_1(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q4_1: per block ``d, m`` (f16) and 32 nibbles, ``w = d*q + m``.

    Kept exact as ``w = d*(q-8) + (m + 8d)``: the first term is MatMulNBits with its default
    zero point, the second is the ``offsets`` matrix. GGML stores element ``j`` in the low
    nibble of byte ``j`` and element ``j+16`` in its high nibble; MatMulNBits wants
    consecutive elements paired in each byte, so the nibbles are re-paired.
    """
    blocks = _blocks(raw, n, k, 20)
    d = blocks[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = blocks[:, :, 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blocks[:, :, 4:20]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # [n, nb, 32] in element order
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    offsets = (m + 8.0 * d).T.copy()
    return PackedLinear(n, k, 4, BLOCK, np.ascontiguousarray(packed), d, offsets)


def pack_q4_0(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q4_0: per block ``d`` (f16) and 32 nibbles, ``w = d*(q-8)``: symmetric, no offsets."""
    blocks = _blocks(raw, n, k, 18)
    d = blocks[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blocks[:, :, 2:18]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return PackedLinear(n, k, 4, BLOCK, np.ascontiguousarray(packed), d)


def pack_q8_0(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q8_0: per block ``d`` (f16) and 32 int8, ``w = d*q``; stored as ``uint8 = q + 128``."""
    blocks = _blocks(raw, n, k, 34)
    d = blocks[:, :, 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    q = blocks[:, :, 2:34].view(np.int8).astype(np.int16) + 128
    return PackedLinear(n, k, 8, BLOCK, np.ascontiguousarray(q.astype(np.uint8)), d)


def _super_blocks(raw: np.ndarray, n: int, k: int, block_bytes: int) -> np.ndarray:
    """View GGUF rows as ``uint8[n * k/256, block_bytes]``, one K-quant super-block a row."""
    if k % QK_K:
        raise ValueError(f"K-quant rows of {k} values are not whole super-blocks of {QK_K}")
    return np.ascontiguousarray(raw).view(np.uint8).reshape(n * (k // QK_K), block_bytes)


def _f16(column: np.ndarray) -> np.ndarray:
    """Two-byte columns read as little-endian float16, widened to float32 (exactly)."""
    return column.copy().view(np.float16)[..., 0].astype(np.float32)


def _k_scale_min(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eight 6-bit sub-block scales and mins packed in 12 bytes (Q4_K, Q5_K).

    Bytes 0-3 hold scales 0-3 in their low six bits, bytes 4-7 mins 0-3 likewise; bytes
    8-11 hold the low four bits of scale/min 4-7, whose top two bits sit in the top bits of
    bytes 0-3 (scales) and 4-7 (mins). This is ggml's ``get_scale_min_k4``.
    """
    s = scales.reshape(-1, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _pair_nibbles(q: np.ndarray) -> np.ndarray:
    """``uint8[..., 2j]`` low, ``[..., 2j+1]`` high: MatMulNBits' 4-bit byte layout."""
    return np.ascontiguousarray((q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8))


def pack_q4_k(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q4_K: super-block ``d, dmin`` (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.

    Sub-block ``i`` (32 values) is ``w = d*sc[i]*q - dmin*m[i]``, written here as
    ``(d*sc[i])*(q-8) + (8*d*sc[i] - dmin*m[i])``: 4-bit MatMulNBits with block 32 plus
    the offset matrix, as for Q4_1. Each 32-byte chunk of ``qs`` holds sub-block ``2j`` in
    its low nibbles and ``2j+1`` in its high nibbles.
    """
    b = _super_blocks(raw, n, k, 144)
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scale_min(b[:, 4:16])
    qs = b[:, 16:144].reshape(-1, 4, 1, 32)
    q = ((qs >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)) & 0x0F).reshape(n, k // BLOCK, BLOCK)
    scale = (d[:, None] * sc).reshape(n, k // BLOCK)
    offset = (8.0 * scale - (dmin[:, None] * mn).reshape(n, k // BLOCK)).T.copy()
    return PackedLinear(n, k, 4, BLOCK, _pair_nibbles(q), scale, offset)


def pack_q5_k(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q5_K: as Q4_K plus 32 bytes of fifth bits (bit ``i`` of byte ``j``: sub-block ``i``, value ``j``).

    Five bits do not fit the 4-bit kernel, so values go to 8-bit MatMulNBits (block 32) as
    ``u = q + 112`` (``u - 128 = q - 16``), with offset ``16*d*sc - dmin*m``.
    """
    b = _super_blocks(raw, n, k, 176)
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scale_min(b[:, 4:16])
    qh = b[:, 16:48].reshape(-1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    qs = b[:, 48:176].reshape(-1, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    q = (qs & 0x0F).reshape(-1, 8, 32) | ((qh & 0x01) << 4)
    scale = (d[:, None] * sc).reshape(n, k // BLOCK)
    offset = (16.0 * scale - (dmin[:, None] * mn).reshape(n, k // BLOCK)).T.copy()
    values = (q.reshape(n, k // BLOCK, BLOCK) + 112).astype(np.uint8)
    return PackedLinear(n, k, 8, BLOCK, values, scale, offset)


def pack_q6_k(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """Q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, ``d`` (f16).

    Sub-block ``i`` (16 values) is ``w = d*sc[i]*(q-32)`` with ``q`` in 0..63: symmetric,
    so 8-bit MatMulNBits with block 16, ``u = q + 96`` and scale ``d*sc[i]`` is exact with
    no offset. Layout per half (128 values): ``ql`` 64 bytes give values 0-63 (low
    nibbles) and 64-127 (high), ``qh`` 32 bytes give their top bits two at a time.
    """
    b = _super_blocks(raw, n, k, 210)
    ql = b[:, 0:128].reshape(-1, 2, 1, 64) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    qh = b[:, 128:192].reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
    q = (ql & 0x0F).reshape(-1, 8, 32) | ((qh & 0x03).reshape(-1, 8, 32) << 4)
    sc = b[:, 192:208].view(np.int8).astype(np.float32)
    d = _f16(b[:, 208:210])
    scale = (d[:, None] * sc).reshape(n, k // 16)
    values = (q.reshape(n, k // 16, 16) + 96).astype(np.uint8)
    return PackedLinear(n, k, 8, 16, values, scale)


def pack_float(raw: np.ndarray, n: int, k: int) -> PackedLinear:
    """F32/F16: kept as a dense float32 matrix (a plain MatMul in the graph)."""
    dense = np.asarray(raw).astype(np.float32).reshape(n, k)
    return PackedLinear(n, k, 32, k, None, None, dense=dense)


Packer = Callable[[np.ndarray, int, int], PackedLinear]

PACKERS: dict[GGMLType, Packer] = {
    GGMLType.Q4_0: pack_q4_0,
    GGMLType.Q4_1: pack_q4_1,
    GGMLType.Q8_0: pack_q8_0,
    GGMLType.Q4_K: pack_q4_k,
    GGMLType.Q5_K: pack_q5_k,
    GGMLType.Q6_K: pack_q6_k,
    GGMLType.F32: pack_float,
    GGMLType.F16: pack_float,
}
"""GGML type -> packer. A type missing here is reported as unsupported, by name."""


def concat_rows(parts: list[PackedLinear]) -> PackedLinear:
    """Stack linears that read the same input (Q, K, V; gate, up) into one wider matmul.

    One MatMulNBits over the concatenated rows replaces several small ones, which is what
    keeps decoding at batch 1 fast. All parts must share bits, block size and ``k``.
    """
    first = parts[0]
    if any((p.bits, p.block_size, p.k) != (first.bits, first.block_size, first.k) for p in parts):
        raise ValueError("cannot fuse linears of different formats")
    n = sum(p.n for p in parts)
    if first.dense is not None:
        return PackedLinear(n, first.k, first.bits, first.block_size, None, None,
                            dense=np.concatenate([p.dense for p in parts], axis=0))
    offsets = None
    if any(p.offsets is not None for p in parts):
        offsets = np.concatenate(
            [p.offsets if p.offsets is not None else np.zeros((p.k // p.block_size, p.n), np.float32)
             for p in parts], axis=1)
    return PackedLinear(
        n, first.k, first.bits, first.block_size,
        np.concatenate([p.quantized for p in parts], axis=0),
        np.concatenate([p.scales for p in parts], axis=0),
        offsets,
    )
