"""Vocabularies of imported GGUFs: SentencePiece ("llama"), Qwen2's and Llama 3's byte-level BPE.

Each test writes a tiny GGUF whose vocabulary was trained here with ``tokenizers`` on
varied text, converts it, and checks three things: the folder's ``tokenizer.json`` gives
what llama.cpp's algorithm gives (a plain Python SPM reference below, or the trained BPE
itself), onnxruntime-genai's tokenizer agrees with ``tokenizers`` id for id, and decoding
gives the text back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Vocabulary, write_tiny_gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from archivist.errors import ConversionError
from archivist_models.gguf import convert
from archivist_models.gguf.tokenizer import LLAMA3_PATTERN, QWEN2_PATTERN

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "Hello, world! The year 2024 had 366 days; π ≈ 3.14159.",
    "naïve café, Zürich, 東京, Москва, العربية, हिन्दी, 🚀🔥👍🏽",
    'def fib(n: int) -> int:\n    """Return F(n)."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
    "   leading spaces,\ttabs\t\tand\n\n\nnewlines   trailing   ",
    "I'm sure they'll say we've done it; you'd agree, wouldn't you? DON'T SHOUT",
    "$1,234.56 — 0x1F 1e-9 +44 (0)20 7946 0958 12:30:45",
    "if (a&&b||!c) { x += y->z[i]; } // C++ <template>",
]


def _corpus() -> list[str]:
    files = ["tests/models/reference.py", "models/gguf/graph.py", "models/gguf/packing.py"]
    return [(ROOT / f).read_text(encoding="utf-8") for f in files] + TEXTS[:2] + [
        "Привет, мир! Съешь же ещё этих мягких французских булок. 東京は日本の首都です。"]


def _og_tokenizer(folder: Path):
    import onnxruntime_genai as og

    og.disable_telemetry_events()
    return og.Tokenizer(og.Model(str(folder)))


# --- SentencePiece ("llama") --------------------------------------------------------------

SPM_SPECIAL = ["<|user|>", "<|assistant|>", "<|end|>"]


def spm_reference(text: str, tokens: list[str], scores: list[float], types: list[int],
                  add_space_prefix: bool = True) -> list[int]:
    """llama.cpp's SPM tokenizer, plainly: split out control tokens, prefix a space after
    the start and after each control token (``add_space_prefix``), ``' '`` -> ``▁``, then repeatedly join the
    adjacent pair whose join is a normal piece with the highest score (leftmost on ties);
    characters left outside the vocabulary become ``<0xXX>`` byte tokens."""
    ids = {t: i for i, t in enumerate(tokens)}
    normal = {t for t, kind in zip(tokens, types) if kind == 1}
    control = sorted((t for t, kind in zip(tokens, types) if kind == 3), key=len, reverse=True)
    out: list[int] = []
    fragments: list[tuple[bool, str]] = []
    rest = text
    while rest:
        hits = [(rest.find(c), c) for c in control if rest.find(c) >= 0]
        if not hits:
            fragments.append((False, rest))
            break
        at, c = min(hits, key=lambda h: (h[0], -len(h[1])))
        if at:
            fragments.append((False, rest[:at]))
        fragments.append((True, c))
        rest = rest[at + len(c):]
    prev_special = True
    for is_special, frag in fragments:
        if is_special:
            out.append(ids[frag])
            prev_special = True
            continue
        symbols = list(((" " if prev_special and add_space_prefix else "") + frag).replace(" ", "▁"))
        prev_special = False
        while True:
            best = None
            for j in range(len(symbols) - 1):
                joined = symbols[j] + symbols[j + 1]
                if joined in normal:
                    key = (-scores[ids[joined]], j)
                    if best is None or key < best:
                        best = key
            if best is None:
                break
            j = best[1]
            symbols[j:j + 2] = [symbols[j] + symbols[j + 1]]
        for s in symbols:
            if s in ids:
                out.append(ids[s])
            else:
                out.extend(ids[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
    return out


SPM_TRAINING_SPLIT = r"▁?\p{L}[\p{L}\p{M}]*|\p{N}|▁?[^\p{L}\p{N}▁]+|▁"
"""How SentencePiece's defaults (``split_by_unicode_script``, ``split_digits``, as Llama 2,
Mistral and Phi-3 were trained) bound pieces: a ``▁`` may lead a run of letters or of
symbols, digits stand alone. Used only to train the test vocabulary."""


def spm_vocabulary(add_bos: bool = False, add_space_prefix: bool | None = None) -> Vocabulary:
    """A Llama-style vocabulary: <unk> <s> </s>, 256 byte tokens, trained pieces scored by
    merge order (as SentencePiece BPE scores them), then Phi-3-like control tokens."""
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False),
        pre_tokenizers.Split(Regex(SPM_TRAINING_SPLIT), behavior="isolated"),
    ])
    trained.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=800, min_frequency=2, show_progress=False))
    head = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces = [p for p, _ in sorted(trained.get_vocab().items(), key=lambda kv: kv[1]) if p not in head]
    tokens = head + pieces + SPM_SPECIAL
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces) + [3] * len(SPM_SPECIAL)
    scores = [0.0] * len(head) + [-float(i) for i in range(len(pieces))] + [0.0] * len(SPM_SPECIAL)
    return Vocabulary("llama", tokens, types, bos=1, eos=2, scores=scores, unk=0, add_bos=add_bos,
                      add_space_prefix=add_space_prefix)


@pytest.fixture(scope="module", params=[None, False], ids=["space-prefix", "no-space-prefix"])
def spm_model(request, tmp_path_factory) -> tuple[Path, Vocabulary]:
    """Phi-3-like: the space prefix is on unless the GGUF says ``add_space_prefix = false``."""
    tmp = tmp_path_factory.mktemp("spm")
    vocab = spm_vocabulary(add_bos=True, add_space_prefix=request.param)
    gguf = write_tiny_gguf(tmp / "spm.gguf", architecture="phi3", vocabulary=vocab)
    return convert(gguf, tmp / "spm"), vocab


SPM_TEXTS = TEXTS + ["<|user|>\nQuestion?<|end|>\n<|assistant|>\n", "<|user|>Hi<|end|>", "x" * 3 + "  y"]


@pytest.mark.parametrize("text", SPM_TEXTS)
def test_spm_matches_llama_cpp_algorithm_and_genai(text: str, spm_model) -> None:
    folder, vocab = spm_model
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    expected = spm_reference(text, vocab.tokens, vocab.scores, vocab.types, vocab.add_space_prefix is not False)
    assert hf.encode(text, add_special_tokens=False).ids == expected
    assert hf.encode(text).ids == [vocab.bos] + expected  # add_bos_token from the GGUF
    og_tok = _og_tokenizer(folder)
    assert list(og_tok.encode(text)) == expected  # genai's encode adds no BOS by default
    og_tok.update_options(add_special_tokens="true")
    assert list(og_tok.encode(text)) == [vocab.bos] + expected
    if not any(c in text for c in SPM_SPECIAL):  # a control token is followed by a prefix space
        assert hf.decode(expected, skip_special_tokens=False) == text
        # genai keeps the dummy-prefix space unless the ids start with BOS (then it is skipped).
        assert og_tok.decode([vocab.bos] + expected) == text
        assert og_tok.decode(expected) in (text, " " + text)


def test_spm_folder_is_a_llama_tokenizer(spm_model) -> None:
    import json

    folder, _ = spm_model
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "LlamaTokenizer"
    assert config["add_bos_token"] is True and config["bos_token"] == "<s>" and config["unk_token"] == "<unk>"
    assert set(SPM_SPECIAL) <= set(config["additional_special_tokens"])


def test_spm_pieces_joining_digits_are_refused(tmp_path: Path) -> None:
    vocab = spm_vocabulary()
    vocab.tokens.append("▁12")
    vocab.types.append(1)
    vocab.scores.append(-1e4)
    gguf = write_tiny_gguf(tmp_path / "digits.gguf", vocabulary=vocab)
    with pytest.raises(ConversionError, match=r"joins digits.*'▁12'"):
        convert(gguf, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- Qwen2 (and Llama 3) byte-level BPE --------------------------------------------------

@pytest.fixture(scope="module", params=[("qwen2", "qwen2", QWEN2_PATTERN), ("llama", "llama-bpe", LLAMA3_PATTERN)],
                ids=["qwen2", "llama-bpe"])
def bpe_model(request, tmp_path_factory) -> tuple[Path, Tokenizer, str]:
    """A byte-level BPE trained with the model's own split regex, written into a GGUF."""
    architecture, pre, pattern = request.param
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trained.decoder = decoders.ByteLevel()
    trained.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=900, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trained.add_special_tokens(specials)
    state = trained.model.__getstate__()
    import json

    model = json.loads(state)
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab] + specials
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    types = [1] * len(vocab) + [3] * len(specials)
    eos = tokens.index("<|endoftext|>")
    vocabulary = Vocabulary("gpt2", tokens, types, bos=eos, eos=eos, pre=pre, merges=merges, add_bos=False)
    tmp = tmp_path_factory.mktemp(pre)
    gguf = write_tiny_gguf(tmp / f"{pre}.gguf", architecture=architecture, vocabulary=vocabulary)
    return convert(gguf, tmp / pre), trained, pre


@pytest.mark.parametrize("text", TEXTS + ["<|im_start|>user\nQuestion?<|im_end|>\n<|im_start|>assistant\n",
                                          "Ａｂｃ e\u0301 ﬁ 12345678"])
def test_byte_level_bpe_matches_trained_tokenizer_and_genai(text: str, bpe_model) -> None:
    folder, trained, pre = bpe_model
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    expected = trained.encode(text).ids  # no NFC step: llama.cpp and genai apply none
    assert hf.encode(text).ids == expected
    assert list(_og_tokenizer(folder).encode(text)) == expected
    assert hf.decode(expected, skip_special_tokens=False) == text
    digits = [hf.id_to_token(i) for i in hf.encode("12345").ids]
    if pre == "qwen2":  # Qwen2 splits numbers digit by digit, Llama 3 in groups of three
        assert digits == ["1", "2", "3", "4", "5"]
