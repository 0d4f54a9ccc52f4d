"""A plain numpy forward pass of a decoder GGUF, the yardstick for the converter.

Deliberately independent of ``archivist_models.gguf``: weights are dequantized with the
``gguf`` package's own ``dequantize`` and hyperparameters read straight from metadata, so a
packing or graph bug in the converter cannot cancel out here. Slow and simple on purpose;
reusable for tiny synthetic GGUFs written with ``gguf.GGUFWriter``.

Architectures follow llama.cpp's graphs for them:

* llama, mistral: "normal" rope, rotating adjacent pairs ``(2i, 2i+1)`` (what the row
  permutation applied by llama.cpp's converter to the Q/K weights expects);
* qwen2: NeoX rope (pairs ``(i, i + d/2)``) and biases on Q, K and V;
* phi3: NeoX rope, fused ``attn_qkv`` (Q rows, then K, then V) and fused ``ffn_up`` (gate
  rows, then up); with ``rope_factors_short/long`` (LongRoPE) each frequency is divided by
  its factor and cos/sin are scaled by ``rope.scaling.attn_factor``. The long factors are
  used when the sequence is longer than ``rope.scaling.original_context_length``, as
  onnxruntime-genai's builder (and Hugging Face's Phi-3) decide it;
* any of them with ``rope_freqs`` (llama 3.1): every frequency divided by its factor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

NEOX = {"qwen2", "phi3"}


class ReferenceDecoder:
    """Dequantized weights of a llama-family GGUF, and its float64 forward pass."""

    def __init__(self, path: Path) -> None:
        reader = GGUFReader(path)
        fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.")}
        self.arch = arch = fields["general.architecture"]
        self.n_layers = int(fields[f"{arch}.block_count"])
        self.n_heads = int(fields[f"{arch}.attention.head_count"])
        self.n_kv = int(fields.get(f"{arch}.attention.head_count_kv", self.n_heads))
        self.hidden = int(fields[f"{arch}.embedding_length"])
        self.head_dim = self.hidden // self.n_heads
        self.theta = float(fields.get(f"{arch}.rope.freq_base", 10000.0))
        self.eps = float(fields[f"{arch}.attention.layer_norm_rms_epsilon"])
        self.original_context = fields.get(f"{arch}.rope.scaling.original_context_length")
        self.attn_factor = float(fields.get(f"{arch}.rope.scaling.attn_factor", 1.0))
        self.w = {t.name: dequantize(t.data, t.tensor_type).astype(np.float64).reshape(
            [int(x) for x in reversed(t.shape)] if len(t.shape) > 1 else -1) for t in reader.tensors}

    def _rms(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def _rope(self, x: np.ndarray) -> np.ndarray:
        """x: [seq, heads, head_dim], rotated by ``pos * theta^(-2i/d) / factor_i``."""
        seq = x.shape[0]
        inv = self.theta ** (-np.arange(0, self.head_dim, 2) / self.head_dim)
        scale = 1.0
        if "rope_freqs.weight" in self.w:  # llama 3.1: fixed per-frequency divisors
            inv = inv / self.w["rope_freqs.weight"]
        if "rope_factors_long.weight" in self.w:
            long = self.original_context is not None and seq > int(self.original_context)
            inv = inv / self.w["rope_factors_long.weight" if long else "rope_factors_short.weight"]
            scale = self.attn_factor
        ang = np.arange(seq)[:, None] * inv[None, :]
        cos, sin = (np.cos(ang) * scale)[:, None, :], (np.sin(ang) * scale)[:, None, :]
        half = self.head_dim // 2
        first, second = (x[..., :half], x[..., half:]) if self.arch in NEOX else (x[..., 0::2], x[..., 1::2])
        a, b = first * cos - second * sin, first * sin + second * cos
        if self.arch in NEOX:
            return np.concatenate([a, b], axis=-1)
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a, b
        return out

    def _qkv(self, p: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.w
        if p + "attn_qkv.weight" in w:
            qkv = h @ w[p + "attn_qkv.weight"].T
            kv = self.n_kv * self.head_dim
            return qkv[:, :self.hidden], qkv[:, self.hidden:self.hidden + kv], qkv[:, self.hidden + kv:]
        out = []
        for part in "qkv":
            y = h @ w[p + f"attn_{part}.weight"].T
            out.append(y + w[p + f"attn_{part}.bias"] if p + f"attn_{part}.bias" in w else y)
        return out[0], out[1], out[2]

    def _gate_up(self, p: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        if p + "ffn_gate.weight" not in w:
            fused = h @ w[p + "ffn_up.weight"].T
            half = fused.shape[-1] // 2
            return fused[:, :half], fused[:, half:]
        return h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T

    def logits(self, tokens: list[int]) -> np.ndarray:
        """Logits ``[len(tokens), vocab]`` for a sequence starting at position 0."""
        w = self.w
        x = w["token_embd.weight"][np.asarray(tokens)]
        seq, hd = len(tokens), self.head_dim
        causal = np.triu(np.full((seq, seq), -np.inf), k=1)
        group = self.n_heads // self.n_kv
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self._rms(x, w[p + "attn_norm.weight"])
            q, k, v = self._qkv(p, h)
            q = self._rope(q.reshape(seq, self.n_heads, hd))
            k = self._rope(k.reshape(seq, self.n_kv, hd))
            v = v.reshape(seq, self.n_kv, hd)
            heads = []
            for head in range(self.n_heads):
                kv = head // group
                scores = q[:, head] @ k[:, kv].T / np.sqrt(hd) + causal
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                heads.append((scores / scores.sum(axis=-1, keepdims=True)) @ v[:, kv])
            x = x + np.concatenate(heads, axis=-1) @ w[p + "attn_output.weight"].T
            h = self._rms(x, w[p + "ffn_norm.weight"])
            gate, up = self._gate_up(p, h)
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        x = self._rms(x, w["output_norm.weight"])
        head = w.get("output.weight", w["token_embd.weight"])
        return x @ head.T


ReferenceLlama = ReferenceDecoder
"""The name the first (llama-only) tests used."""
