"""SentencePiece-style ("llama") vocabularies as a ``tokenizers`` BPE with byte fallback.

Llama 2, Mistral and Phi-3 GGUFs carry ``tokenizer.ggml.model == "llama"``: pieces with
scores and no merges. llama.cpp tokenizes them by repeatedly joining the adjacent pair
whose joined piece is in the vocabulary with the highest score, falling back to
``<0xXX>`` byte tokens for characters the vocabulary lacks, after turning spaces into
``▁`` and prefixing one (``add_space_prefix``, on unless the file says otherwise).

A ``tokenizers`` BPE does the same once the merges are listed in that score order; they
are derived here exactly as Hugging Face's ``SentencePieceExtractor`` derives them for
``LlamaTokenizerFast`` (every split of a piece into two pieces, ranked by the score of the
joined piece), and the normalizer and decoder are the ones Llama 2's and Phi-3's own
``tokenizer.json`` use, which onnxruntime-genai reads as a ``LlamaTokenizer``.

onnxruntime-genai's reader splits digits from neighbouring characters before merging (it
never forms ``▁1`` or ``a1`` even when the vocabulary has them), so vocabularies with such
pieces are refused rather than tokenized differently from llama.cpp. Vocabularies trained
with ``split_digits`` (Llama 2, Mistral, Phi-3) have none. onnxruntime-genai's ``encode``
adds no BOS by default (``add_special_tokens``): Llama 2's and Mistral's chat templates
write ``<s>`` themselves; Phi-3's does not, so its prompts go without BOS, as with
Microsoft's own onnxruntime-genai Phi-3 folders.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers

from archivist.errors import ConversionError

NORMAL = 1
SPACE = "▁"


def spm_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Merges of the normal pieces, highest-scoring joined piece first."""
    vocab = {t: i for i, t in enumerate(tokens) if types[i] == NORMAL}
    found: list[tuple[str, str, float]] = []
    for piece, i in vocab.items():
        local = [(piece[:j], piece[j:], scores[i]) for j in range(1, len(piece))
                 if piece[:j] in vocab and piece[j:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        found.extend(local)
    found.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep the order above
    return [(left, right) for left, right, _ in found]


def _joins_digits(piece: str) -> bool:
    """A piece with an ASCII digit and something else (``▁1``, ``a1``), never in a vocabulary
    trained with SentencePiece's ``split_digits`` (Llama 2, Mistral, Phi-3)."""
    digits = sum(c in "0123456789" for c in piece)
    return 0 < digits < len(piece)


def build_spm_tokenizer(
    tokens: list[str], scores: list[float] | None, types: list[int], unk_id: int | None, add_space_prefix: bool,
) -> Tokenizer:
    """The BPE ``Tokenizer`` (without added tokens) equal to llama.cpp's SPM tokenizer."""
    if scores is None:
        raise ConversionError("The SentencePiece vocabulary has no token scores (tokenizer.ggml.scores).")
    if not any(t.startswith("<0x") for t in tokens):
        raise ConversionError("SentencePiece vocabularies without <0xXX> byte tokens are not supported.")
    if unk_id is None:
        unk_id = tokens.index("<unk>") if "<unk>" in tokens else None
    if unk_id is None:
        raise ConversionError("The SentencePiece vocabulary has no unknown token.")
    mixed = next((t for t, kind in zip(tokens, types) if kind == NORMAL and _joins_digits(t)), None)
    if mixed is not None:
        raise ConversionError(
            f"This SentencePiece vocabulary joins digits to other characters (piece {mixed!r}); onnxruntime-genai's "
            "tokenizer always splits them apart, so it would not match llama.cpp: not supported.")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=spm_merges(tokens, scores, types), unk_token=tokens[unk_id],
                               fuse_unk=True, byte_fallback=True, dropout=None))
    steps = [normalizers.Prepend(SPACE)] if add_space_prefix else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPACE)])
    tail = [decoders.Strip(content=" ", left=1, right=0)] if add_space_prefix else []
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), *tail])
    return tok
