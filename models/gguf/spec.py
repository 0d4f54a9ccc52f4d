"""Hyperparameters of a decoder-only model, read from GGUF metadata.

Architectures are listed in ``ARCHITECTURES`` with the few traits that change the graph.
A later architecture (mistral, qwen2, phi3) is added by one entry here plus, where its
tensors differ, a branch in ``graph.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

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


ARCHITECTURES: dict[str, ArchitectureTraits] = {
    "llama": ArchitectureTraits(rope_interleaved=True),
}


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
    if source.field(f"{arch}.rope.scaling.type") not in (None, "none"):
        raise ConversionError(f"Rope scaling {source.field(f'{arch}.rope.scaling.type')!r} is not supported yet.")
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
        context_length=int(source.require(f"{arch}.context_length")),
        rope_theta=float(source.field(f"{arch}.rope.freq_base", 10000.0)),
        rms_norm_eps=float(source.require(f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_interleaved=traits.rope_interleaved,
        tied_embeddings="output.weight" not in source.tensors,
    )
