"""Cutting a document's parts into passages the encoder reads whole, with exact locators.

The same approach as the local library's chunker (a passage never spans two parts, so
its page and offsets are exact; sentences are packed up to ``max_tokens`` word-pieces of
the encoder's own tokenizer; a sentence longer than that is cut at word-piece
boundaries), written again here because a plugin imports only the public ``archivist``
API, not another plugin. Each passage after the first of a part starts with the last
sentence of the one before when that sentence is short (``overlap_tokens``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from archivist import Document, Locator

_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])[\"')\]]*\s+|\n\s*\n|\n(?=\s*[-*•]\s)|\n(?=[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    text: str
    locator: Locator
    ordinal: int


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


class Chunker:
    def __init__(self, tokenizer: Any, max_tokens: int = 200, overlap_tokens: int = 16) -> None:
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer without padding or truncation
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def chunk(self, doc: Document) -> list[Chunk]:
        out: list[Chunk] = []
        for part in doc.parts:
            base = part.locator.start
            for start, end in self._split(part.text):
                out.append(Chunk(part.text[start:end], Locator(part.locator.page, part.locator.section,
                                                               base + start, base + end), len(out)))
        return out

    def _split(self, text: str) -> list[tuple[int, int]]:
        pieces: list[tuple[int, int, int]] = []  # (start, end, tokens), each at most max_tokens
        spans = _sentences(text)
        encodings = self.tokenizer.encode_batch([text[s:e] for s, e in spans], add_special_tokens=False)
        for (start, end), enc in zip(spans, encodings):
            n = len(enc.ids)
            if n <= self.max_tokens:
                pieces.append((start, end, n))
                continue
            offsets = enc.offsets
            for i in range(0, n, self.max_tokens):
                window = offsets[i:i + self.max_tokens]
                pieces.append((start + window[0][0], start + window[-1][1], len(window)))
        chunks: list[tuple[int, int]] = []
        current: list[tuple[int, int, int]] = []
        for piece in pieces:
            if current and sum(p[2] for p in current) + piece[2] > self.max_tokens:
                chunks.append((current[0][0], current[-1][1]))
                last = current[-1]
                current = [last] if last[2] <= self.overlap_tokens and last[2] + piece[2] <= self.max_tokens else []
            current.append(piece)
        if current:
            chunks.append((current[0][0], current[-1][1]))
        return chunks
