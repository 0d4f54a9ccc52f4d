"""Files pinned to a conversation, read whole: the text a whole-file question is asked of.

Why not the index: a question about a whole document ("summarise this report", "list
every deadline in this contract") wants all of it, not the few passages a search ranks
first. The file is read here, when the question is asked, through the document loaders
the plugins register (``register_loaders``; the core never imports a plugin's modules),
so every format the library reads can be pinned, and a file need not be in the library.

A document's parts (pages, slides, sections) become *units*: numbered sources that keep
the file and page, so a citation names both. A part longer than :data:`UNIT_CHARS` (a
text file is one part) is cut at paragraph, line or word boundaries, each piece keeping
its character offsets. Qt-free.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archivist.errors import UnreadableDocument
from archivist.types import Document, Locator, Passage

if TYPE_CHECKING:
    from archivist.plugins import Contribution, PluginHost
    from archivist.protocols import DocumentLoader

# Characters of one unit: about a page of prose (roughly 1,000 tokens), small enough that
# a part of a map-reduce pass can hold several and a citation points near its words.
UNIT_CHARS = 4000
# Larger files are refused before a loader reads them (the library's limit too).
MAX_FILE_BYTES = 200 * 1024 * 1024
# What :class:`ReadCache` keeps: a follow-up question about a pinned 600-page PDF (about
# 1.5 million characters) should not parse it again, and a session pins few files.
CACHE_CHARS = 32_000_000
CACHE_FILES = 16


def pin_paths(paths: Iterable[str | Path]) -> list[str]:
    """``paths`` as they are pinned: absolute and normalised ("a/../b" is "b"; links are
    kept, as the user named them), each once, in the order given. They are not read here (a file may be pinned now and changed before the question)."""
    return list(dict.fromkeys(os.path.abspath(Path(p).expanduser()) for p in paths))


def loader_for(host: PluginHost, path: Path) -> Contribution[DocumentLoader] | None:
    """The loader that reads ``path`` by its extension (a file without one is read as
    ``.txt``): a third-party plugin's before a built-in one, as the register_loaders
    hook promises; among equals, the first in hook order."""
    suffix = path.suffix.lower() or ".txt"
    candidates = []
    for contribution in host.loaders():
        extensions = {e.lower() if e.startswith(".") else "." + e.lower() for e in contribution.obj.extensions}
        if suffix in extensions:
            record = host.records.get(contribution.plugin)
            candidates.append((record is not None and record.builtin, contribution))
    candidates.sort(key=lambda item: item[0])  # stable: third-party first, hook order kept
    return candidates[0][1] if candidates else None


class ReadCache:
    """Documents read for pinned files, kept while each file is unchanged.

    Why: a conversation's pins are read again at every question (a file may change
    between two), and a long PDF takes seconds to parse, OCR minutes. A document is kept
    under its path, size, modification time (in nanoseconds) and the plugin whose loader
    read it, so an edited file, or a new plugin that reads the format, is read afresh.
    Bounded by :data:`CACHE_CHARS` characters and :data:`CACHE_FILES` files, the least
    recently asked about dropped first. Thread-safe: the window and the HTTP API may ask
    at once (two threads missing the same file both read it; the second one is kept)."""

    def __init__(self, max_chars: int = CACHE_CHARS, max_files: int = CACHE_FILES) -> None:
        self.max_chars = max_chars
        self.max_files = max_files
        self._docs: OrderedDict[tuple[str, int, int, str], tuple[Document, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int, int, str]) -> Document | None:
        with self._lock:
            kept = self._docs.get(key)
            if kept is None:
                self.misses += 1
                return None
            self._docs.move_to_end(key)
            self.hits += 1
            return kept[0]

    def put(self, key: tuple[str, int, int, str], document: Document) -> None:
        chars = sum(len(part.text) for part in document.parts)
        if chars > self.max_chars:
            return
        with self._lock:
            for old in [k for k in self._docs if k[0] == key[0]]:  # an older version of the file
                self._chars -= self._docs.pop(old)[1]
            self._docs[key] = (document, chars)
            self._chars += chars
            while self._docs and (self._chars > self.max_chars or len(self._docs) > self.max_files):
                self._chars -= self._docs.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._docs)


def read_file(host: PluginHost, path: str | Path, cache: ReadCache | None = None) -> Document:
    """The document in ``path``, read by its loader (or from ``cache`` while the file is
    unchanged); :class:`UnreadableDocument` with one line naming the file and saying why
    when it cannot be read.

    The loader is called directly rather than under the host's guard: a parser that
    fails on one strange file is that file's problem (it is reported), and must not
    switch the retrieval plugin off for the session.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise UnreadableDocument(f"cannot read {name}: no such file")
    if path.is_dir():
        raise UnreadableDocument(f"cannot read {name}: it is a folder (pin the files in it, or add it to the library)")
    try:
        stat = path.stat()
    except OSError as exc:
        raise UnreadableDocument(f"cannot read {name}: {exc.strerror or exc}") from exc
    size = stat.st_size
    if size == 0:
        raise UnreadableDocument(f"cannot read {name}: empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise UnreadableDocument(f"cannot read {name}: too large ({size:,} bytes, over {MAX_FILE_BYTES:,})")
    contribution = loader_for(host, path)
    if contribution is None:
        raise UnreadableDocument(f"cannot read {name}: no loader for '{path.suffix or path.name}' files "
                                 "(a plugin may add one: archivist plugins list)")
    key = (os.path.abspath(path), size, stat.st_mtime_ns, contribution.plugin)
    if cache is not None and (kept := cache.get(key)) is not None:
        return kept
    try:
        document = contribution.obj.load(path)
    except UnreadableDocument as exc:
        raise UnreadableDocument(f"cannot read {name}: {exc}") from exc
    except MemoryError as exc:
        raise UnreadableDocument(f"cannot read {name}: ran out of memory reading it") from exc
    except Exception as exc:  # a parser's bug on a strange file
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UnreadableDocument(f"cannot read {name}: it could not be parsed ({type(exc).__name__}: {first})") from exc
    if not isinstance(document, Document):
        raise UnreadableDocument(f"cannot read {name}: its loader {contribution.plugin} returned "
                                 f"{type(document).__name__}, not a Document")
    if not any(part.text.strip() for part in document.parts):
        raise UnreadableDocument(f"cannot read {name}: no text found in it (a scan whose pages have no text layer?)")
    if cache is not None:
        cache.put(key, document)
    return document


def read_files(host: PluginHost, paths: Sequence[str | Path], cache: ReadCache | None = None) -> list[Document]:
    """Each of ``paths`` read (:func:`read_file`); the first that cannot be stops the rest."""
    return [read_file(host, p, cache) for p in paths]


def units(document: Document, path: str | None = None) -> list[Passage]:
    """The document as numbered-source units: one per part (page), a long part cut into
    pieces of at most :data:`UNIT_CHARS`, each with its file, page and offsets."""
    where = path or document.path
    out: list[Passage] = []
    for part in document.parts:
        for start, end in text_pieces(part.text, UNIT_CHARS):
            text = part.text[start:end].strip()
            if not text:
                continue
            base = part.locator.start
            locator = Locator(page=part.locator.page, section=part.locator.section, start=base + start,
                              end=base + end)
            out.append(Passage(text=text, path=where, locator=locator, score=1.0))
    return out


def file_units(documents: Sequence[Document], paths: Sequence[str] | None = None) -> list[Passage]:
    """Every unit of ``documents``, in file order then page order (``paths``: the pinned
    path of each, which the citations name; by default the loader's)."""
    out: list[Passage] = []
    for i, document in enumerate(documents):
        out += units(document, paths[i] if paths is not None else None)
    return out


def describe_units(sources: Sequence[Passage]) -> str:
    """Where ``sources`` are, for people: "report.pdf, pages 3-7" (several files joined
    by "; ", a file without pages by its name alone)."""
    by_file: dict[str, list[int]] = {}
    for passage in sources:
        pages = by_file.setdefault(passage.path, [])
        if passage.locator.page and passage.locator.page not in pages:
            pages.append(passage.locator.page)
    shown = []
    for path, pages in by_file.items():
        name = Path(path).name or path
        if not pages:
            shown.append(name)
        elif len(pages) == 1:
            shown.append(f"{name}, page {pages[0]}")
        else:
            shown.append(f"{name}, pages {min(pages)}–{max(pages)}")
    return "; ".join(shown)


def text_pieces(text: str, limit: int) -> list[tuple[int, int]]:
    """``text`` cut into (start, end) ranges of at most ``limit`` characters, each ending
    at the last paragraph break, else line break, else space before the limit."""
    ranges = []
    start = 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = -1
        for mark in ("\n\n", "\n", " "):
            cut = window.rfind(mark)
            if cut > limit // 2:
                break
        end = start + (cut + 1 if cut > limit // 2 else limit)
        ranges.append((start, end))
        start = end
    ranges.append((start, len(text)))
    return ranges
