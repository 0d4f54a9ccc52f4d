"""``tokenizer.json`` and ``tokenizer_config.json`` rebuilt from the GGUF's own vocabulary.

The GGUF carries the token list, the BPE merges, the token types and the name of the
pre-tokenizer (``tokenizer.ggml.pre``) that llama.cpp uses; with the ``tokenizers``
library that is enough to write the Hugging Face file the original model shipped with.
onnxruntime-genai reads the same file through onnxruntime-extensions, so only
pre-tokenizer shapes that both implementations understand are produced here.

Two vocabulary kinds are understood: byte-level BPE (``tokenizer.ggml.model == "gpt2"``),
where each supported ``tokenizer.ggml.pre`` value maps to a pre-tokenizer in
``PRE_TOKENIZERS``, and SentencePiece-style vocabularies (``"llama"``, see ``spm.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from archivist.errors import ConversionError

from .source import GGUFSource
from .spm import build_spm_tokenizer

CONTROL = 3
"""``tokenizer.ggml.token_type`` value of control tokens (``<|im_start|>``, ...)."""

USER_DEFINED = 4
"""``tokenizer.ggml.token_type`` of tokens matched verbatim before tokenizing, not special."""

END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
"""Tokens that end a reply; generation stops at any of them that the vocabulary holds."""


def _starcoder_like() -> pre_tokenizers.PreTokenizer:
    """SmolLM / StarCoder: every digit alone, then GPT-2 byte-level splitting."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


def _gpt2() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen2's split regex (llama.cpp's ``LLAMA_VOCAB_PRE_TYPE_QWEN2``): digits one by one."""

LLAMA3_PATTERN = QWEN2_PATTERN.replace(r"\p{N}|", r"\p{N}{1,3}|")
"""Llama 3's (``llama-bpe``): as Qwen2's but numbers in groups of up to three digits."""


def _split_then_bytes(pattern: str) -> Callable[[], pre_tokenizers.PreTokenizer]:
    """A regex split followed by byte-level mapping, as Qwen2's and Llama 3's tokenizer.json."""
    def make() -> pre_tokenizers.PreTokenizer:
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
    return make


PRE_TOKENIZERS: dict[str, Callable[[], pre_tokenizers.PreTokenizer]] = {
    "smollm": _starcoder_like,
    "starcoder": _starcoder_like,
    "refact": _starcoder_like,
    "gpt-2": _gpt2,
    "default": _gpt2,
    "qwen2": _split_then_bytes(QWEN2_PATTERN),
    "llama-bpe": _split_then_bytes(LLAMA3_PATTERN),
}
"""Qwen2's own tokenizer.json also normalizes to NFC; llama.cpp and onnxruntime-genai do
not, so neither does the converted one (text with combining accents keeps them)."""


@dataclass(frozen=True)
class SpecialTokens:
    """Ids the runtime needs: begin, end (all reply-ending ids), padding."""

    bos_id: int
    eos_ids: list[int]
    pad_id: int
    add_bos: bool


def special_tokens(source: GGUFSource) -> SpecialTokens:
    tokens: list[str] = source.require("tokenizer.ggml.tokens")
    eos = int(source.require("tokenizer.ggml.eos_token_id"))
    eos_ids = [eos]
    index = {t: i for i, t in enumerate(tokens)}
    for text in END_OF_TURN_TOKENS:
        if text in index and index[text] not in eos_ids:
            eos_ids.append(index[text])
    return SpecialTokens(
        bos_id=int(source.field("tokenizer.ggml.bos_token_id", eos)),
        eos_ids=eos_ids,
        pad_id=int(source.field("tokenizer.ggml.padding_token_id", eos)),
        add_bos=bool(source.field("tokenizer.ggml.add_bos_token", False)),
    )


def build_tokenizer(source: GGUFSource) -> Tokenizer:
    """The ``Tokenizer`` equal to the one llama.cpp runs on this GGUF (BPE or SentencePiece)."""
    kind = source.require("tokenizer.ggml.model")
    tokens: list[str] = source.require("tokenizer.ggml.tokens")
    types: list[int] = source.field("tokenizer.ggml.token_type", [1] * len(tokens))
    if kind == "llama":
        unk = source.field("tokenizer.ggml.unknown_token_id")
        tok = build_spm_tokenizer(tokens, source.field("tokenizer.ggml.scores"), types,
                                  None if unk is None else int(unk),
                                  bool(source.field("tokenizer.ggml.add_space_prefix", True)))
    elif kind == "gpt2":
        tok = _byte_level_bpe(source, tokens)
    else:
        raise ConversionError(f"Unsupported tokenizer model {kind!r} (supported: gpt2 byte-level BPE, llama SentencePiece).")
    tok.add_special_tokens([
        AddedToken(t, special=True, normalized=False) for t, kind in zip(tokens, types) if kind == CONTROL
    ])
    user = [AddedToken(t, special=False, normalized=False) for t, kind in zip(tokens, types) if kind == USER_DEFINED]
    if user:
        tok.add_tokens(user)
    special = special_tokens(source)
    if special.add_bos:
        bos = tokens[special.bos_id]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, special.bos_id)])
    return tok


def _byte_level_bpe(source: GGUFSource, tokens: list[str]) -> Tokenizer:
    pre = str(source.field("tokenizer.ggml.pre", "default"))
    if pre not in PRE_TOKENIZERS:
        raise ConversionError(f"Unsupported pre-tokenizer {pre!r} (supported: {', '.join(sorted(PRE_TOKENIZERS))}).")
    merges = [tuple(m.split(" ", 1)) for m in source.field("tokenizer.ggml.merges", [])]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = PRE_TOKENIZERS[pre]()
    tok.decoder = decoders.ByteLevel()
    return tok


def write_tokenizer_files(source: GGUFSource, out_dir: Path, context_length: int) -> SpecialTokens:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
    tok = build_tokenizer(source)
    tok.save(str(out_dir / "tokenizer.json"))
    tokens: list[str] = source.require("tokenizer.ggml.tokens")
    special = special_tokens(source)
    named = {
        "bos_token": tokens[special.bos_id],
        "eos_token": tokens[special.eos_ids[0]],
        "pad_token": tokens[special.pad_id],
    }
    unk = source.field("tokenizer.ggml.unknown_token_id")
    if unk is not None:
        named["unk_token"] = tokens[int(unk)]
    types: list[int] = source.field("tokenizer.ggml.token_type", [1] * len(tokens))
    spm = source.require("tokenizer.ggml.model") == "llama"
    config = {
        "tokenizer_class": "LlamaTokenizer" if spm else "GPT2Tokenizer",
        "add_bos_token": special.add_bos,
        "add_eos_token": False,
        "add_prefix_space": False,
        **({"legacy": True, "sp_model_kwargs": {}} if spm else {}),
        "clean_up_tokenization_spaces": False,
        "model_max_length": context_length,
        **named,
        "additional_special_tokens": [t for t, kind in zip(tokens, types) if kind == CONTROL],
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True}
            for i, (t, kind) in enumerate(zip(tokens, types)) if kind == CONTROL
        },
    }
    template = source.field("tokenizer.chat_template")
    if template:
        config["chat_template"] = template
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(named, indent=2, ensure_ascii=False), encoding="utf-8")
    return special
