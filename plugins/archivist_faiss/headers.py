"""Contextual passage headers: what a passage is from, indexed with it but never shown.

Forty accident reports say "the pilot reported a loss of engine power" in nearly the same
words; what tells them apart (the place, the date, the aircraft, a trial's number) is in
the file name, the title or the first lines of the first page, not in the passage. So
every passage is indexed with a short header made from those: the file name, the title,
a few of the document's metadata, and the start of its first page. The encoder embeds
``header + passage``, and the header's words go to the keyword index's second column
(with the file name, folders and dates, :func:`~archivist_faiss.records.metadata_text`).
The passage text, its offsets and what a citation shows are unchanged.

The header is at most :data:`HEADER_TOKENS` word-pieces, so a passage of the chunker's
200 still fits the encoder's 256 with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from archivist import Document

HEADER_TOKENS = 48  # 200-word-piece passages + 48 + [CLS]/[SEP] <= the encoder's 256
LEAD_CHARS = 400  # of the first page, before the word-piece cap
METADATA_KEYS = ("subject", "author", "from", "date", "sheets")

_SPACE = re.compile(r"\s+")
_RULE = re.compile(r"([_=\-*.·•|])\1{3,}")  # "______", "-----": form lines and rules carry nothing


def _clean(text: str) -> str:
    return _SPACE.sub(" ", _RULE.sub(" ", text)).strip()


def header_text(path: Path | str, doc: Document | None) -> str:
    """The header of every passage of ``doc`` (read from ``path``), before the word-piece cap."""
    path = Path(path)
    name = path.stem.replace("_", " ").replace("-", " ")
    pieces = [name]
    if doc is not None:
        if doc.title and doc.title.strip() and _clean(doc.title).lower() != name.lower():
            pieces.append(_clean(doc.title))
        for key in METADATA_KEYS:
            value = doc.metadata.get(key) if doc.metadata else None
            if value:
                pieces.append(_clean(str(value))[:120])
        first = next((p.text for p in doc.parts if p.text.strip()), "")
        lead = _clean(first[:LEAD_CHARS * 2])[:LEAD_CHARS]
        if lead:
            pieces.append(lead)
    return " | ".join(p for p in pieces if p)


def capped(header: str, tokenizer: Any, max_tokens: int = HEADER_TOKENS) -> str:
    """``header`` cut to at most ``max_tokens`` word-pieces (at a word-piece boundary)."""
    if not header:
        return ""
    encoding = tokenizer.encode(header, add_special_tokens=False)
    if len(encoding.ids) <= max_tokens:
        return header
    end = encoding.offsets[max_tokens - 1][1]
    return header[:end].rstrip()


def with_header(header: str, texts: list[str]) -> list[str]:
    """What the encoder embeds for each passage: its header, a line break, its text."""
    if not header:
        return texts
    return [f"{header}\n{text}" for text in texts]
