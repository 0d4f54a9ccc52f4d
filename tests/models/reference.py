"""A plain numpy forward pass of a llama-architecture GGUF, the yardstick for the converter.

Deliberately independent of ``archivist_models.gguf``: weights are dequantized with the
``gguf`` package's own ``dequantize`` and hyperparameters read straight from metadata, so a
packing or graph bug in the converter cannot cancel out here. Slow and simple on purpose;
reusable for tiny synthetic GGUFs written with ``gguf.GGUFWriter``.

Rotary embedding follows llama.cpp's "normal" rope for llama (rotating adjacent pairs
``(2i, 2i+1)``), which is what the row permutation applied by llama.cpp's converter to the
Q/K weights expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class ReferenceLlama:
    """Dequantized weights of a llama GGUF, and its float64 forward pass."""

    def __init__(self, path: Path) -> None:
        reader = GGUFReader(path)
        fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.")}
        arch = fields["general.architecture"]
        self.n_layers = int(fields[f"{arch}.block_count"])
        self.n_heads = int(fields[f"{arch}.attention.head_count"])
        self.n_kv = int(fields.get(f"{arch}.attention.head_count_kv", self.n_heads))
        self.hidden = int(fields[f"{arch}.embedding_length"])
        self.head_dim = self.hidden // self.n_heads
        self.theta = float(fields.get(f"{arch}.rope.freq_base", 10000.0))
        self.eps = float(fields[f"{arch}.attention.layer_norm_rms_epsilon"])
        self.w = {t.name: dequantize(t.data, t.tensor_type).astype(np.float64) for t in reader.tensors}

    def _rms(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def _rope(self, x: np.ndarray) -> np.ndarray:
        """x: [seq, heads, head_dim]; rotate pairs (2i, 2i+1) by pos * theta^(-2i/d)."""
        seq = x.shape[0]
        inv = self.theta ** (-np.arange(0, self.head_dim, 2) / self.head_dim)
        ang = np.arange(seq)[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

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
            q = self._rope((h @ w[p + "attn_q.weight"].T).reshape(seq, self.n_heads, hd))
            k = self._rope((h @ w[p + "attn_k.weight"].T).reshape(seq, self.n_kv, hd))
            v = (h @ w[p + "attn_v.weight"].T).reshape(seq, self.n_kv, hd)
            heads = []
            for head in range(self.n_heads):
                kv = head // group
                scores = q[:, head] @ k[:, kv].T / np.sqrt(hd) + causal
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                heads.append((scores / scores.sum(axis=-1, keepdims=True)) @ v[:, kv])
            x = x + np.concatenate(heads, axis=-1) @ w[p + "attn_output.weight"].T
            h = self._rms(x, w[p + "ffn_norm.weight"])
            gate = h @ w[p + "ffn_gate.weight"].T
            up = h @ w[p + "ffn_up.weight"].T
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        x = self._rms(x, w["output_norm.weight"])
        head = w.get("output.weight", w["token_embd.weight"])
        return x @ head.T
