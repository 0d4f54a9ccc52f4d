"""Hyperparameters of a decoder-only model, read from GGUF metadata.

Architectures are listed in ``ARCHITECTURES`` with the few traits that change the graph;
everything else (shapes, rope base, norms) is read from the file. A further llama-like
architecture is added by one entry here plus, where its tensors differ, a branch in
``graph.py``.

Sliding-window attention (Mistral 7B v0.1, Phi-3 mini) is not applied: like llama.cpp, the
converter attends over the whole context, which is identical while the context is shorter
than the window (4096 and 2047 tokens for those models) and differs beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archivist.errors import ConversionError

from .source import GGUFSource


@dataclass(frozen=True)
class ArchitectureTraits:
    """What distinguishes one llama-like architecture from another in the graph.

    ``rope_interleaved``: llama.cpp's converter permutes the Q/K rows of llama-style models so
    that its "normal" rope rotates adjacent pairs; applying interleaved rotary to the GGUF
    weights as they are is therefore exact (no un-permutation needed). NeoX-style models
    (qwen2, phi3) keep HF's half-split layout and need non-interleaved rotary.
    """

    rope_interleaved: bool
    qkv_bias: bool = False
    """Q, K and V carry biases (``attn_q.bias`` ...), added before attention (qwen2)."""
    fused_qkv: bool = False
    """One ``attn_qkv`` tensor holds Q, K and V rows in that order (phi3)."""
    fused_gate_up: bool = False
    """``ffn_up`` holds the gate rows then the up rows, and there is no ``ffn_gate`` (phi3)."""


ARCHITECTURES: dict[str, ArchitectureTraits] = {
    "llama": ArchitectureTraits(rope_interleaved=True),
    # Mistral 7B GGUFs usually say "llama"; the name is accepted for files that say "mistral".
    "mistral": ArchitectureTraits(rope_interleaved=True),
    "qwen2": ArchitectureTraits(rope_interleaved=False, qkv_bias=True),
    "phi3": ArchitectureTraits(rope_interleaved=False, fused_qkv=True, fused_gate_up=True),
}

ROPE_FACTOR_TENSORS = ("rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight")
"""Per-frequency rope divisors: llama 3.1's ``rope_freqs`` and Phi-3's LongRoPE pair."""


@dataclass(frozen=True)
class ModelSpec:
    """Shapes and constants of the decoder, independent of any file format."""

    architecture: str
    name: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    vocab_size: int
    context_length: int
    rope_theta: float
    rms_norm_eps: float
    rope_interleaved: bool
    tied_embeddings: bool
    qkv_bias: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    long_rope: bool = False
    """LongRoPE: ``rope_factors_short`` up to ``original_context_length`` tokens, ``_long`` beyond."""
    original_context_length: int | None = None
    rope_attn_factor: float = 1.0
    """cos/sin multiplier of LongRoPE (``sqrt(1 + ln(ctx/orig)/ln(orig))`` for Phi-3 128k)."""


def read_spec(source: GGUFSource) -> ModelSpec:
    """Validate the architecture and collect its hyperparameters."""
    arch = source.architecture
    traits = ARCHITECTURES.get(arch)
    if traits is None:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise ConversionError(f"Unsupported model architecture {arch!r} (supported: {supported}).")
    hidden = int(source.require(f"{arch}.embedding_length"))
    heads = int(source.require(f"{arch}.attention.head_count"))
    head_size = int(source.field(f"{arch}.attention.key_length", hidden // heads))
    rope_dim = int(source.field(f"{arch}.rope.dimension_count", head_size))
    if rope_dim != head_size:
        raise ConversionError(f"Partial rotary embeddings ({rope_dim} of {head_size}) are not supported yet.")
    scaling = source.field(f"{arch}.rope.scaling.type")
    long_rope = "rope_factors_long.weight" in source.tensors or "rope_factors_short.weight" in source.tensors
    if scaling not in (None, "none") and not (long_rope and scaling in ("longrope", "su")):
        raise ConversionError(f"Rope scaling {scaling!r} is not supported yet.")
    context_length = int(source.require(f"{arch}.context_length"))
    original_context = source.field(f"{arch}.rope.scaling.original_context_length")
    if long_rope:
        if not {"rope_factors_long.weight", "rope_factors_short.weight"} <= set(source.tensors):
            raise ConversionError("LongRoPE needs both rope_factors_short and rope_factors_long tensors.")
        if original_context is None:
            raise ConversionError(f"{source.path.name} has LongRoPE factors but no rope.scaling.original_context_length.")
        if "rope_freqs.weight" in source.tensors:
            raise ConversionError("A model with both rope_freqs and LongRoPE factors is not supported.")
    for name in ROPE_FACTOR_TENSORS:
        if name in source.tensors and int(source.tensor(name).n_elements) != head_size // 2:
            raise ConversionError(f"{name} has {int(source.tensor(name).n_elements)} factors, expected {head_size // 2}.")
    attn_factor = source.field(f"{arch}.rope.scaling.attn_factor")
    if attn_factor is None:
        scale = context_length / int(original_context) if long_rope else 1.0
        attn_factor = float(np.sqrt(1 + np.log(scale) / np.log(int(original_context)))) if scale > 1 else 1.0
    tokens = source.require("tokenizer.ggml.tokens")
    embd_rows, _ = source.matrix_shape("token_embd.weight")
    return ModelSpec(
        architecture=arch,
        name=str(source.field("general.name", source.path.stem)),
        num_layers=int(source.require(f"{arch}.block_count")),
        hidden_size=hidden,
        intermediate_size=int(source.require(f"{arch}.feed_forward_length")),
        num_heads=heads,
        num_kv_heads=int(source.field(f"{arch}.attention.head_count_kv", heads)),
        head_size=head_size,
        vocab_size=int(source.field(f"{arch}.vocab_size", embd_rows or len(tokens))),
        context_length=context_length,
        rope_theta=float(source.field(f"{arch}.rope.freq_base", 10000.0)),
        rms_norm_eps=float(source.require(f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_interleaved=traits.rope_interleaved,
        tied_embeddings="output.weight" not in source.tensors,
        qkv_bias=traits.qkv_bias,
        fused_qkv=traits.fused_qkv,
        fused_gate_up=traits.fused_gate_up,
        long_rope=long_rope,
        original_context_length=int(original_context) if long_rope else None,
        rope_attn_factor=float(attn_factor) if long_rope else 1.0,
    )
