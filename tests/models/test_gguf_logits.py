"""The converted graph computes what the GGUF's weights say, against a numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize
from ort_forward import onnx_logits, relative_error
from reference import ReferenceLlama

from archivist_models.gguf import GraphOptions, convert
from archivist_models.gguf.packing import PACKERS

# "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
PROMPT = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]


@pytest.fixture(scope="module")
def reference_logits(default_gguf: Path) -> np.ndarray:
    return ReferenceLlama(default_gguf).logits(PROMPT)


def test_packers_reproduce_gguf_dequantize(default_gguf: Path) -> None:
    reader = GGUFReader(default_gguf)
    seen = set()
    for tensor in reader.tensors:
        if tensor.tensor_type in seen or len(tensor.shape) != 2:
            continue
        seen.add(tensor.tensor_type)
        k, n = (int(x) for x in tensor.shape)
        packed = PACKERS[tensor.tensor_type](tensor.data, n, k)
        np.testing.assert_array_equal(packed.dequantize(), dequantize(tensor.data, tensor.tensor_type))
    assert {t.name for t in seen} == {"Q4_1", "Q8_0"}


def test_exact_conversion_matches_reference(exact_model: Path, reference_logits: np.ndarray) -> None:
    logits = onnx_logits(exact_model, PROMPT)
    assert relative_error(logits, reference_logits) < 1e-3


def test_default_model_tracks_reference(default_model: Path, reference_logits: np.ndarray) -> None:
    # The default graph computes with int8 activations (like llama.cpp), which moves logits
    # by a few percent of their range; the exact graph above proves the weights themselves.
    logits = onnx_logits(default_model, PROMPT)
    assert relative_error(logits, reference_logits) < 0.1
    assert (logits.argmax(-1) == reference_logits.argmax(-1)).mean() >= 0.85


def _perplexity(model_dir: Path, tokens: list[int]) -> float:
    logits = onnx_logits(model_dir, tokens).astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return float(np.exp(-logp[np.arange(len(tokens) - 1), tokens[1:]].mean()))


def test_default_model_perplexity_close_to_exact(default_model: Path, exact_model: Path) -> None:
    from tokenizers import Tokenizer

    corpus = (Path(__file__).parent / "reference.py").read_text(encoding="utf-8")  # prose and code
    tokens = Tokenizer.from_file(str(default_model / "tokenizer.json")).encode(corpus).ids[:384]
    assert len(tokens) > 100
    assert _perplexity(default_model, tokens) < 1.03 * _perplexity(exact_model, tokens)


def test_tiny_synthetic_gguf_matches_reference(tiny_gguf: Path, tmp_path: Path) -> None:
    out = convert(tiny_gguf, tmp_path / "tiny-model", options=GraphOptions.exact())
    tokens = [0, 5, 17, 200, 1, 42, 42, 3]
    expected = ReferenceLlama(tiny_gguf).logits(tokens)
    assert relative_error(onnx_logits(out, tokens), expected) < 1e-3
