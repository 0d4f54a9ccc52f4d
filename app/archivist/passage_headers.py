"""Contextual passage headers: what a passage is from, searchable with it but never shown.
Public (``archivist.passage_meta``, ``passage_header``, ``holds_lead``) so that every
library indexes passages with the same header: the built-in one and a team collection do.

Forty accident reports say "the pilot reported a loss of engine power" in nearly the same
words; what tells them apart (the place, the date, the aircraft, a trial's number) is in
the file name, the title or the first lines of the first page, not in the passage. So
every passage is indexed with a short header made from those: the file name, the title,
a few of the document's metadata, and the start of its first page. The header's words go
to the keyword index beside the passage, with the file name, folders and dates
(:func:`passage_meta`; the built-in library: a second FTS5 column; a team collection: its
passages' ``tsv``); the passage text, its offsets and what a citation shows are unchanged.

The encoder embeds the passage alone. Embedding ``header + passage`` was measured first
(``bench/retrieval.py --compare``, docs/documents.md): it lifted the reports' hybrid R@1
by 5 points but cost XQuAD 1.2, made indexing the 619-page report 1.37 times the CPU
time (every passage 48 word-pieces longer), and let a short passage, embedded mostly as
its header, outrank the passage that answers within a document whose title matches the
question. The keyword column alone carries nearly all of what the headers bring.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from archivist.types import Document, Locator

LEAD_CHARS = 400  # of the first page
METADATA_KEYS = ("subject", "author", "from", "date", "sheets")

_SPACE = re.compile(r"\s+")
_RULE = re.compile(r"([_=\-*.·•|])\1{3,}")  # "______", "-----": form lines and rules carry nothing


def _clean(text: str) -> str:
    return _SPACE.sub(" ", _RULE.sub(" ", text)).strip()


def holds_lead(doc: Document | None, locator: Locator) -> bool:
    """Whether the passage at ``locator`` holds (the start of) the lead of a *paged*
    document: it lies on the first page with text and starts within its first
    :data:`LEAD_CHARS` characters. Such a passage is indexed with the header minus the
    lead (``passage_header(..., lead=False)``): its own words already are the lead.

    Why: a report's first page opens with its title block (the place, date and aircraft
    of an accident; the company and quarter of a filing), the words a question names its
    document by. Every passage carries them in its header, so they choose the document;
    counted a second time in the passage that holds them, they also choose that passage
    (the title page) over the one that answers. On the near-identical reports this took
    keyword search's R@1 from 0.796 to 0.858 and the hybrid's from 0.726 to 0.823
    (docs/documents.md). Only paged documents: the first lines of a text file are
    content, not a title block (on XQuAD's articles, text files, doing the same cost
    keyword search 3.5 points at R@1)."""
    if doc is None:
        return False
    first = next((p for p in doc.parts if p.text.strip()), None)
    if first is None or first.locator.page is None or locator.page != first.locator.page:
        return False
    return locator.start - first.locator.start < LEAD_CHARS


def passage_header(path: Path | str, doc: Document | None, lead: bool = True) -> str:
    """The header of every passage of ``doc`` (read from ``path``); without ``lead``,
    the start of its first page is left out (for the passages :func:`holds_lead`)."""
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
        start = _clean(first[:LEAD_CHARS * 2])[:LEAD_CHARS]
        if start and lead:
            pieces.append(start)
    return " | ".join(p for p in pieces if p)


def passage_meta(path: Path | str, doc: Document | None, mtime: float, header: bool = True,
                 first_page: bool = True) -> str:
    """What a passage of ``doc`` is searched by beside its own text: the file's name,
    title, last folders, modification date (``mtime``) and sender, date and author; with
    ``header``, the passage header too (:func:`passage_header`, with the first page's
    start unless ``first_page`` is False, for the passages that hold it: :func:`holds_lead`)."""
    path = Path(path)
    date = datetime.fromtimestamp(mtime)
    words = [path.name, path.stem.replace("_", " ").replace("-", " "), doc.title if doc and doc.title else "",
             " ".join(path.parent.parts[-3:]), date.strftime("%Y-%m-%d %B %Y %b")]
    if doc is not None:
        for key in ("from", "date", "author"):
            if doc.metadata.get(key):
                words.append(str(doc.metadata[key]))
        if header:
            words.append(passage_header(path, doc, lead=first_page))
    return " ".join(w for w in words if w)
