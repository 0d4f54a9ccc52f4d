"""The tokenizer rebuilt from the GGUF: same ids in `tokenizers` and in onnxruntime-genai."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf import GGUFReader
from tokenizers import Tokenizer

TEXTS = [
    "Hello, world! The year 2024 had 366 days; π ≈ 3.14159.",
    "naïve café, Zürich, 東京, Москва, العربية, हिन्दी, 🚀🔥👍🏽",
    'def fib(n: int) -> int:\n    """Return F(n)."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
    "   leading spaces,\ttabs\t\tand\n\n\nnewlines   trailing   ",
    "I'm sure they'll say we've done it; you'd agree, wouldn't you? DON'T SHOUT",
    "$1,234.56 — 0x1F 1e-9 +44 (0)20 7946 0958 12:30:45",
    "<|im_start|>user\nQuestion?<|im_end|>\n<|im_start|>assistant\n",
    "if (a&&b||!c) { x += y->z[i]; } // C++ <template>",
]


@pytest.fixture(scope="module")
def hf_tokenizer(default_model: Path) -> Tokenizer:
    return Tokenizer.from_file(str(default_model / "tokenizer.json"))


@pytest.fixture(scope="module")
def og_tokenizer(og_model):
    import onnxruntime_genai as og

    return og.Tokenizer(og_model)


@pytest.mark.parametrize("text", TEXTS)
def test_genai_tokenizer_matches_tokenizers(text: str, hf_tokenizer: Tokenizer, og_tokenizer) -> None:
    expected = hf_tokenizer.encode(text).ids
    assert list(og_tokenizer.encode(text)) == expected
    assert hf_tokenizer.decode(expected, skip_special_tokens=False) == text


def test_vocabulary_is_the_ggufs(default_gguf: Path, hf_tokenizer: Tokenizer) -> None:
    reader = GGUFReader(default_gguf)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert hf_tokenizer.get_vocab_size() == len(tokens)
    assert all(hf_tokenizer.id_to_token(i) == t for i, t in enumerate(tokens))
    control = {t for t, kind in zip(tokens, types) if kind == 3}
    assert control == {t.content for t in hf_tokenizer.get_added_tokens_decoder().values() if t.special}
    # Known pieces of SmolLM2's BPE: merged words, digits split one by one.
    assert hf_tokenizer.encode("<|im_start|>").ids == [1]
    assert hf_tokenizer.encode(" capital").ids == [3575]
    assert len(hf_tokenizer.encode("12345").ids) == 5


def test_chat_template_from_folder(default_model: Path, og_tokenizer) -> None:
    config = json.loads((default_model / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert "<|im_start|>" in config["chat_template"]
    messages = json.dumps([{"role": "user", "content": "Hi there"}])
    prompt = og_tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.startswith("<|im_start|>system\n")
