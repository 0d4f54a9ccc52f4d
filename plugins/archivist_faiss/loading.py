"""Which loader reads which file, and the limits that keep one file from hurting a run.

:class:`LoaderRegistry` maps extensions to loaders (a later registration wins, as the
``register_loaders`` hook promises). :meth:`LoaderRegistry.load` never raises for a bad
file: it returns a :class:`LoadResult` whose ``reason`` says why the file was skipped,
and whether that reason may pass (``transient``: the file is tried again at the next
sync) or stays as long as the file does (an encrypted PDF, a picture).

This reads in the calling process. The index reads in a child process instead, under
per-file ceilings of memory and time (:mod:`archivist_faiss.reading`); both go through
:meth:`LoaderRegistry.check` before and :meth:`LoaderRegistry.finish` after, so a
document reaches chunking in the same shape whichever process read it.

A loader that reads pages slowly (OCR: seconds a page) says how far it is with
:func:`report_pages`; whoever reads the file hears it through :func:`reporting_pages`
(a progress bar, and the reader's time limit, which gives each such page its own).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archivist import Document, DocumentLoader, DocumentPart, Locator, UnreadableDocument

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_TIME_LIMIT_S = 120.0
# Each page read by OCR may take this much more than the file's time limit (seconds on
# two cores for a dense page; a minute leaves room for a busy machine).
DEFAULT_PAGE_TIME_S = 60.0

# SQLite's integers are 64-bit; a page number past this is a hostile file's, not a page.
_MAX_INT = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def builtin_loaders(time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> list[DocumentLoader]:
    from archivist_faiss.images import ImageLoader
    from archivist_faiss.officefiles import DocxLoader, EpubLoader, OdtLoader, PptxLoader
    from archivist_faiss.pdf import PdfLoader
    from archivist_faiss.tables import CsvLoader, SpreadsheetLoader
    from archivist_faiss.textfiles import EmailLoader, HtmlLoader, MarkdownLoader, RtfLoader, TextLoader

    return [TextLoader(), MarkdownLoader(), HtmlLoader(), RtfLoader(), EmailLoader(),
            PdfLoader(time_limit_s=time_limit_s), DocxLoader(), PptxLoader(), OdtLoader(), EpubLoader(),
            SpreadsheetLoader(), CsvLoader(), ImageLoader()]


PageProgress = Callable[[int, int], None]
_pages: ContextVar[PageProgress | None] = ContextVar("archivist_faiss_pages", default=None)


@contextmanager
def reporting_pages(progress: PageProgress | None) -> Iterator[None]:
    """While the block runs, :func:`report_pages` calls ``progress(done, total)``."""
    token = _pages.set(progress)
    try:
        yield
    finally:
        _pages.reset(token)


def report_pages(done: int, total: int) -> None:
    """For a loader: ``done`` of the ``total`` slow pages of the file being read are
    read (called with ``done`` before each such page starts, and once more at the end)."""
    progress = _pages.get()
    if progress is not None:
        progress(done, total)


@dataclass
class LoadResult:
    path: Path
    document: Document | None = None
    reason: str | None = None
    loader: str | None = None
    seconds: float = 0.0
    transient: bool = False  # the reason may pass (a timeout, memory, a loader's bug): retry next sync


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters of it)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate (a UTF-7 or escape-codec leftover, a name's
    undecodable byte) replaced by U+FFFD, one for one, so offsets stay right and the
    tokenizer and SQLite, which take only valid Unicode, can have it."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return clean_text(str(value))


def _page(page: Any) -> int | None:
    return page if isinstance(page, int) and not isinstance(page, bool) and 0 <= page <= _MAX_INT else None


def _offset(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INT else 0


def clean_document(doc: Document) -> Document:
    """``doc`` as the index can store it: valid Unicode everywhere, page numbers and
    offsets that fit a 64-bit integer (else none), string metadata. Raises TypeError
    when it is not a document of text parts at all (a loader's bug)."""
    if not isinstance(doc, Document) or not all(isinstance(p, DocumentPart) and isinstance(p.text, str)
                                                  for p in doc.parts):
        raise TypeError(f"the loader returned {type(doc).__name__}, not a Document of text parts")
    parts = []
    for part in doc.parts:
        loc = part.locator if isinstance(part.locator, Locator) else Locator()
        section = clean_text(loc.section) if isinstance(loc.section, str) else None
        text = clean_text(part.text)
        parts.append(DocumentPart(text, Locator(page=_page(loc.page), section=section,
                                                start=_offset(loc.start), end=_offset(loc.end))))
    title = clean_text(doc.title) if isinstance(doc.title, str) else None
    metadata = {clean_text(str(k)): _clean_value(v) for k, v in (doc.metadata or {}).items()}
    return replace(doc, path=clean_text(str(doc.path)), parts=tuple(parts), title=title, metadata=metadata)


class LoaderRegistry:
    def __init__(self, loaders: Iterable[Any] = (), *, max_bytes: int = DEFAULT_MAX_BYTES,
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S, page_time_s: float = DEFAULT_PAGE_TIME_S) -> None:
        self.by_ext: dict[str, Any] = {}
        self.max_bytes = max_bytes
        self.time_limit_s = time_limit_s
        self.page_time_s = page_time_s
        for loader in loaders:
            self.register(loader)

    def register(self, loader: Any) -> None:
        for ext in loader.extensions:
            self.by_ext[ext.lower() if ext.startswith(".") else "." + ext.lower()] = loader

    def loader_for(self, path: Path) -> Any | None:
        suffix = Path(path).suffix.lower()
        if not suffix:  # README, LICENSE, Makefile...: read as text if they are text
            return self.by_ext.get(".txt")
        return self.by_ext.get(suffix)

    def supports(self, path: Path) -> bool:
        return self.loader_for(path) is not None

    def check(self, path: Path) -> tuple[Any, LoadResult | None]:
        """The loader for ``path``, and the result when the file is skipped before reading
        it (no loader, unreadable, empty, over the size limit); None when it may be read."""
        loader = self.loader_for(path)
        if loader is None:
            return None, LoadResult(path, reason=f"unsupported file type '{path.suffix or path.name}'")
        try:
            size = path.stat().st_size
        except OSError as exc:
            return loader, LoadResult(path, reason=f"cannot read: {exc.strerror or exc}", loader=loader.name,
                                      transient=True)
        if size == 0:
            return loader, LoadResult(path, reason="empty file (0 bytes)", loader=loader.name)
        if size > self.max_bytes:
            return loader, LoadResult(path, reason=f"too large: {size:,} bytes, over the limit of "
                                                   f"{self.max_bytes:,} ({_binary_size(self.max_bytes)})",
                                      loader=loader.name)
        return loader, None

    def load(self, path: Path, cancel: Any = None, progress: PageProgress | None = None) -> LoadResult:
        """Read ``path`` here, in this process (see the module's docstring); ``cancel``
        is not looked at (it is :class:`~archivist_faiss.reading.Reader`'s); ``progress``
        hears :func:`report_pages`. The time limit is checked once the file is read: its
        own, plus :attr:`page_time_s` for each page read by OCR."""
        path = Path(path)
        loader, skipped = self.check(path)
        if skipped is not None:
            return skipped
        t0 = time.monotonic()
        try:
            with reporting_pages(progress):
                doc = loader.load(path)
        except UnreadableDocument as exc:
            return LoadResult(path, reason=str(exc), loader=loader.name, seconds=time.monotonic() - t0,
                              transient=bool(getattr(exc, "transient", False)))
        except MemoryError:
            return LoadResult(path, reason="ran out of memory reading it", loader=loader.name, transient=True)
        except Exception as exc:  # a parser's bug on a strange file must not stop the run
            return LoadResult(path, reason=f"could not be parsed ({describe(exc)})", loader=loader.name,
                              seconds=time.monotonic() - t0, transient=True)
        seconds = time.monotonic() - t0
        limit = self.time_limit_s + self.page_time_s * ocr_pages(doc)
        if seconds > limit:
            return LoadResult(path, reason=f"reading took {seconds:.0f} s, over the {limit:g} s limit",
                              loader=loader.name, seconds=seconds, transient=True)
        return self.finish(path, loader, doc, seconds)

    def finish(self, path: Path, loader: Any, doc: Any, seconds: float) -> LoadResult:
        """The result for a document ``loader`` returned: cleaned (:func:`clean_document`),
        or skipped when it has no text or is not a document at all."""
        try:
            doc = clean_document(doc)
        except TypeError as exc:
            return LoadResult(path, reason=f"could not be parsed ({exc})", loader=loader.name, seconds=seconds,
                              transient=True)
        if not any(p.text.strip() for p in doc.parts):
            return LoadResult(path, reason="no text found", loader=loader.name, seconds=seconds)
        return LoadResult(path, document=doc, loader=loader.name, seconds=seconds)


def ocr_pages(doc: Any) -> int:
    """How many pages of ``doc`` its loader read by OCR (its ``ocr_pages`` metadata)."""
    value = (getattr(doc, "metadata", None) or {}).get("ocr_pages", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _binary_size(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"
