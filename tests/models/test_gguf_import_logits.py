"""Imported GGUFs of every supported architecture and weight type against the numpy reference.

Each case writes a tiny GGUF with ``gguf.GGUFWriter`` (K-quants as raw random blocks, the
others through ``gguf.quants.quantize``), converts it with ``GraphOptions.exact()`` and
compares onnxruntime's logits with ``reference.ReferenceDecoder``, which dequantizes with
gguf's own ``dequantize``. The bar is the issue's: max relative error < 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_tiny_gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.quants import dequantize
from ort_forward import onnx_logits, relative_error
from reference import ReferenceDecoder

from archivist.errors import ConversionError
from archivist_models.gguf import GraphOptions, convert
from archivist_models.gguf.packing import PACKERS

TOKENS = [0, 5, 17, 200, 1, 42, 42, 3, 99, 250, 7]
TOLERANCE = 1e-3
WEIGHT_TYPES = [Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_0, Q.F16, Q.F32]


def _check(gguf: Path, out: Path, tokens: list[int] = TOKENS, options: GraphOptions = GraphOptions.exact()) -> float:
    model = convert(gguf, out, options=options)
    error = relative_error(onnx_logits(model, tokens), ReferenceDecoder(gguf).logits(tokens))
    print(f"{gguf.stem}: max relative error {error:.2e}")
    return error


@pytest.mark.parametrize("kind", WEIGHT_TYPES, ids=lambda t: t.name)
def test_packer_equals_gguf_dequantize(kind: Q, tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / f"{kind.name}.gguf", weight_type=kind, embedding_type=kind)
    for tensor in GGUFReader(path).tensors:
        if len(tensor.shape) != 2:
            continue
        k, n = (int(x) for x in tensor.shape)
        packed = PACKERS[tensor.tensor_type](tensor.data, n, k).dequantize()
        expected = dequantize(tensor.data, tensor.tensor_type).reshape(n, k)
        # Offsets are folded into one float32 constant per block: equal to a few ulp.
        np.testing.assert_allclose(packed, expected, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(expected).max())


@pytest.mark.parametrize("kind", WEIGHT_TYPES, ids=lambda t: t.name)
def test_every_weight_type_matches_reference(kind: Q, tmp_path: Path) -> None:
    # The embedding (tied to the output head) is of the same type, so its lookup is checked too.
    gguf = write_tiny_gguf(tmp_path / f"llama-{kind.name}.gguf", weight_type=kind, embedding_type=kind)
    assert _check(gguf, tmp_path / "out") < TOLERANCE


@pytest.mark.parametrize("architecture", ["llama", "mistral", "qwen2", "phi3"])
@pytest.mark.parametrize("kind", [Q.Q4_0, Q.Q4_K], ids=lambda t: t.name)
def test_every_architecture_matches_reference(architecture: str, kind: Q, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / f"{architecture}-{kind.name}.gguf", architecture=architecture,
                           weight_type=kind, embedding_type=Q.Q6_K if kind == Q.Q4_K else Q.Q8_0)
    assert _check(gguf, tmp_path / "out") < TOLERANCE


@pytest.mark.parametrize("architecture", ["llama", "phi3"])
def test_mixed_types_like_q4_k_m(architecture: str, tmp_path: Path) -> None:
    # Q4_K_M keeps attn_v and ffn_down in Q6_K (here attn_k in Q5_K too): Q, K and V no longer
    # share one format, so they run as separate matmuls whose outputs are concatenated.
    gguf = write_tiny_gguf(tmp_path / f"{architecture}-q4_k_m.gguf", architecture=architecture, weight_type=Q.Q4_K,
                           embedding_type=Q.Q4_K, overrides={"attn_v": Q.Q6_K, "ffn_down": Q.Q6_K, "attn_k": Q.Q5_K})
    assert _check(gguf, tmp_path / "out") < TOLERANCE


def test_phi3_longrope_short_and_long_factors(tmp_path: Path) -> None:
    # original context 16, context 64: up to 16 tokens the short factors, beyond the long ones.
    gguf = write_tiny_gguf(tmp_path / "phi3-longrope.gguf", architecture="phi3", weight_type=Q.Q4_K,
                           embedding_type=Q.Q6_K, context_length=64, longrope_original_context=16)
    model = convert(gguf, tmp_path / "out", options=GraphOptions.exact())
    reference = ReferenceDecoder(gguf)
    rng = np.random.default_rng(3)
    for length in (10, 16, 17, 40):
        tokens = [int(t) for t in rng.integers(0, 256, length)]
        expected = reference.logits(tokens)
        error = relative_error(onnx_logits(model, tokens), expected)
        print(f"phi3 LongRoPE, {length} tokens: max relative error {error:.2e}")
        assert error < TOLERANCE
    # The two factor sets really differ at these lengths (the check above can tell them apart).
    tokens = [int(t) for t in rng.integers(0, 256, 20)]
    long_logits = reference.logits(tokens)
    reference.original_context = 64
    assert relative_error(reference.logits(tokens), long_logits) > 0.05


def test_llama3_rope_freqs(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "llama-rope-freqs.gguf", weight_type=Q.Q4_K, embedding_type=Q.Q6_K,
                           rope_freqs=True)
    assert _check(gguf, tmp_path / "out") < TOLERANCE


def test_fast_options_track_reference(tmp_path: Path) -> None:
    # The default graph (int8 activations, like llama.cpp) on 8-bit block-16 Q6_K and 4-bit
    # Q4_K with offsets: close to the reference, as the default model is (see test_gguf_logits).
    gguf = write_tiny_gguf(tmp_path / "qwen2-fast.gguf", architecture="qwen2", weight_type=Q.Q4_K,
                           embedding_type=Q.Q6_K, overrides={"attn_v": Q.Q6_K})
    assert _check(gguf, tmp_path / "out", options=GraphOptions.fast()) < 0.1


def test_generation_through_genai_crosses_into_long_factors(tmp_path: Path) -> None:
    # onnxruntime-genai drives the If that switches rope caches as the sequence grows.
    import onnxruntime_genai as og

    og.disable_telemetry_events()
    gguf = write_tiny_gguf(tmp_path / "phi3-gen.gguf", architecture="phi3", weight_type=Q.Q4_K,
                           embedding_type=Q.Q6_K, context_length=64, longrope_original_context=16)
    model = og.Model(str(convert(gguf, tmp_path / "out", options=GraphOptions.exact())))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=40, do_sample=False)
    generator = og.Generator(model, params)
    prompt = [5, 17, 200, 42, 42, 3, 99, 250]
    generator.append_tokens(prompt)
    produced: list[int] = []
    while not generator.is_done():
        generator.generate_next_token()
        produced.append(int(generator.get_next_tokens()[0]))
    assert len(prompt) + len(produced) == 40
    # Greedy tokens the reference picks while the short factors still apply (16 tokens).
    reference = ReferenceDecoder(gguf)
    sequence = list(prompt)
    for token in produced[:16 - len(prompt)]:
        assert int(reference.logits(sequence)[-1].argmax()) == token
        sequence.append(token)


def test_unsupported_rope_scaling_is_named(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "yarn.gguf", metadata={"llama.rope.scaling.type": "yarn"})
    with pytest.raises(ConversionError, match="Rope scaling 'yarn' is not supported"):
        convert(gguf, tmp_path / "out")
