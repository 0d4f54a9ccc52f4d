"""Chunks respect the encoder's token limit, keep exact offsets and overlap."""

from __future__ import annotations

from itertools import pairwise

import pytest
from tokenizers import Tokenizer

from archivist import Document, DocumentPart, Locator
from archivist_faiss.chunking import Chunker


@pytest.fixture(scope="module")
def tokenizer(embedder_path):
    tok = Tokenizer.from_file(str(embedder_path / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count(tok, text):
    return len(tok.encode(text, add_special_tokens=False).ids)


def test_limits_offsets_and_pages(tokenizer):
    para = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60))
    doc = Document("x", (DocumentPart(para + "\n\n" + para, Locator(page=3)),
                         DocumentPart("A short second page.", Locator(page=4))))
    chunks = Chunker(tokenizer, max_tokens=100, overlap_tokens=20).chunk(doc)
    assert len(chunks) > 4
    for c in chunks:
        part = doc.parts[0] if c.locator.page == 3 else doc.parts[1]
        assert part.text[c.locator.start:c.locator.end] == c.text
        assert count(tokenizer, c.text) <= 100
    assert chunks[-1].locator.page == 4 and chunks[-1].text == "A short second page."
    # overlap: consecutive chunks of the same page share text
    assert chunks[1].locator.start < chunks[0].locator.end
    # sentence boundaries: chunks start at a sentence
    assert all(c.text.startswith("Sentence") for c in chunks if c.locator.page == 3)


def test_sentence_longer_than_a_chunk_is_cut(tokenizer):
    text = "word " * 1000
    chunks = Chunker(tokenizer, max_tokens=128, overlap_tokens=0).chunk(Document("x", (DocumentPart(text),)))
    assert len(chunks) >= 7
    assert all(count(tokenizer, c.text) <= 128 for c in chunks)
    assert all(text[c.locator.start:c.locator.end] == c.text for c in chunks)


def test_prefers_paragraph_breaks(tokenizer):
    p1 = " ".join(["Alpha beta gamma delta."] * 25)
    p2 = " ".join(["Epsilon zeta eta theta."] * 25)
    chunks = Chunker(tokenizer, max_tokens=200, overlap_tokens=0).chunk(Document("x", (DocumentPart(p1 + "\n\n" + p2),)))
    assert chunks[0].text == p1


def test_default_overlap_carries_the_last_short_sentences(tokenizer):
    # The default overlap (16 word-pieces, see docs/documents.md) still repeats a short
    # closing sentence at the start of the next chunk, and never more than 16 pieces.
    para = " ".join(f"Fact {i} is short." for i in range(200))
    chunks = Chunker(tokenizer).chunk(Document("x", (DocumentPart(para),)))
    assert len(chunks) > 2
    for a, b in pairwise(chunks):
        assert b.locator.start < a.locator.end
        assert count(tokenizer, para[b.locator.start:a.locator.end]) <= 16
