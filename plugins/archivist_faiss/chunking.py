"""Cutting a document's parts into chunks the embedder can read whole.

A chunk never spans two parts (pages, slides, sections), so its locator is exact. Within
a part, text is split into sentences (kept with their character offsets), sentences are
packed greedily up to ``max_tokens`` word-pieces, preferring to end a chunk at a
paragraph break once it is reasonably full, and each chunk starts with the last
sentences of the one before, up to ``overlap_tokens``. A sentence longer than a chunk is
cut at word-piece boundaries using the tokenizer's offsets.

Memory follows the text, not the longest line: a sentence of more than
:data:`WINDOW_CHARS` characters is first cut into windows of about that size (at a
space where it has one), and sentences are tokenized in batches of about
:data:`BATCH_CHARS` characters (a 200 MB line tokenized whole needed over 6 GB). A
window with no space in it that the encoder knows no word-piece of (``aaaa…``, all
``[UNK]``) is not text and is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archivist import Document, Locator

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WINDOW_CHARS = 10_000
# Passages one file may give. A file past it is skipped (:class:`TooManyPassages`): its
# vectors alone would take hundreds of MB and embedding it hours on a laptop (a
# 200,000,000-byte text of words is about a million passages). 50,000 passages is about
# 7.5 million words, some 20,000 pages; the 619-page PDF gives 2,681.
MAX_PASSAGES = 50_000
BATCH_CHARS = 1 << 20

_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])[\"')\]]*\s+|\n\s*\n|\n(?=\s*[-*•]\s)|\n(?=[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    text: str
    locator: Locator
    tokens: int
    ordinal: int = 0


@dataclass(frozen=True, slots=True)  # millions of them for a text of short lines
class _Piece:
    start: int
    end: int
    tokens: int
    paragraph_end: bool


def _trimmed(text: str, s: int, e: int, para: bool) -> Iterator[tuple[int, int, bool]]:
    """(s, e, para) without the whitespace at either end; nothing when only whitespace."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        yield s, e, para


class TooManyPassages(Exception):
    """A document gives more passages than one file may (:data:`MAX_PASSAGES`)."""


class Chunker:
    """Chunks of at most ``max_tokens`` word-pieces (the embedder's limit less [CLS]/[SEP])."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int = 200, overlap_tokens: int = 16,
                 hard_limit: int = 254) -> None:
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer
        self.max_tokens = min(max_tokens, hard_limit)
        self.overlap_tokens = overlap_tokens
        self.unknown = tokenizer.token_to_id(str(getattr(tokenizer.model, "unk_token", "[UNK]")))

    def chunk(self, doc: Document, max_passages: int | None = None) -> list[Chunk]:
        """The document's passages; raises :class:`TooManyPassages` as soon as there are
        more than ``max_passages``, so a huge file costs no more than that many."""
        most = MAX_PASSAGES if max_passages is None else max_passages
        out: list[Chunk] = []
        for part in doc.parts:
            for start, end, tokens in self._split(part.text):
                if len(out) >= most:
                    raise TooManyPassages(f"more than {most:,} passages (about {most * 150:,} words): "
                                          "too big to index usefully; split it into smaller files")
                text = part.text[start:end]
                base = part.locator.start
                out.append(Chunk(text, Locator(page=part.locator.page, section=part.locator.section,
                                               start=base + start, end=base + end), tokens, len(out)))
        return out

    # ------------------------------------------------------------------ internals

    def _spans(self, text: str) -> Iterator[tuple[int, int, bool]]:
        """Sentence spans (start, end, ends_paragraph), whitespace trimmed, one at a time
        (a text of millions of short paragraphs would otherwise hold them all twice)."""
        pos = 0
        for m in _SENTENCE_END.finditer(text):
            yield from _trimmed(text, pos, m.start(), bool(_PARAGRAPH.search(m.group(0))))
            pos = m.end()
        yield from _trimmed(text, pos, len(text), True)

    def _windows(self, text: str) -> Iterator[tuple[int, int, bool, bool]]:
        """Sentence spans (start, end, ends_paragraph, cut_without_a_space), those longer
        than :data:`WINDOW_CHARS` cut into windows of about that size."""
        for s, e, para in self._spans(text):
            hard = False
            while e - s > WINDOW_CHARS:
                cut = text.rfind(" ", s + WINDOW_CHARS // 2, s + WINDOW_CHARS)
                hard = cut < 0
                cut = s + WINDOW_CHARS if hard else cut
                yield s, cut, False, hard
                s = cut
                while s < e and text[s].isspace():
                    s += 1
            if e > s:
                yield s, e, para, hard and " " not in text[s:e]

    def _pieces(self, text: str) -> list[_Piece]:
        pieces: list[_Piece] = []
        batch: list[tuple[int, int, bool, bool]] = []
        size = 0
        for span in self._windows(text):
            batch.append(span)
            size += span[1] - span[0]
            if size >= BATCH_CHARS:
                self._tokenize(text, batch, pieces)
                batch, size = [], 0
        if batch:
            self._tokenize(text, batch, pieces)
        return pieces

    def _tokenize(self, text: str, spans: list[tuple[int, int, bool, bool]], pieces: list[_Piece]) -> None:
        # a window of letters and digits alone is one "word" thousands of characters long:
        # [UNK] to the encoder, so not worth tokenizing (a 200 MB line of them took minutes)
        spans = [(s, e, para, hard) for s, e, para, hard in spans
                 if not (hard and text[s:e].isascii() and text[s:e].isalnum())]
        encs = self.tokenizer.encode_batch([text[s:e] for s, e, _, _ in spans], add_special_tokens=False)
        for (s, e, para, hard), enc in zip(spans, encs):
            ids = enc.ids
            n = len(ids)
            if hard and all(i == self.unknown for i in ids):
                continue  # no space and no word-piece the encoder knows: not text
            if n <= self.max_tokens:
                pieces.append(_Piece(s, e, n, para))
                continue
            # too long for one chunk: cut at word-piece boundaries, on word starts where possible
            offsets = enc.offsets
            words = enc.word_ids
            i = 0
            while i < n:
                j = min(i + self.max_tokens, n)
                if j < n:
                    k = j
                    while k > i + self.max_tokens // 2 and words[k] is not None and words[k] == words[k - 1]:
                        k -= 1
                    j = k
                cs, ce = s + offsets[i][0], s + offsets[j - 1][1]
                pieces.append(_Piece(cs, ce, j - i, para and j == n))
                i = j

    def _split(self, text: str) -> Iterator[tuple[int, int, int]]:
        pieces = self._pieces(text)
        i = 0
        n = len(pieces)
        while i < n:
            j = i
            total = 0
            last_para = None
            while j < n and total + pieces[j].tokens <= self.max_tokens:
                total += pieces[j].tokens
                if pieces[j].paragraph_end and total >= self.max_tokens * 0.6:
                    last_para = (j, total)
                j += 1
            if j < n and last_para is not None:
                j, total = last_para[0] + 1, last_para[1]
            j = max(j, i + 1)
            yield pieces[i].start, pieces[j - 1].end, total or pieces[i].tokens
            if j >= n:
                break
            # overlap: step back over trailing sentences of this chunk
            back = j
            carried = 0
            while back - 1 > i and carried + pieces[back - 1].tokens <= self.overlap_tokens:
                back -= 1
                carried += pieces[back].tokens
            i = back


