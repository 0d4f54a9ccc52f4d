"""Which loader reads which file, and the limits that keep one file from hurting a run.

:class:`LoaderRegistry` maps extensions to loaders (a later registration wins, as the
``register_loaders`` hook promises). :meth:`LoaderRegistry.load` never raises for a bad
file: it returns a :class:`LoadResult` whose ``reason`` says why the file was skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archivist import Document, DocumentLoader, UnreadableDocument

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_TIME_LIMIT_S = 120.0


def builtin_loaders(time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> list[DocumentLoader]:
    from archivist_faiss.officefiles import DocxLoader, EpubLoader, OdtLoader, PptxLoader
    from archivist_faiss.pdf import PdfLoader
    from archivist_faiss.textfiles import EmailLoader, HtmlLoader, MarkdownLoader, RtfLoader, TextLoader

    return [TextLoader(), MarkdownLoader(), HtmlLoader(), RtfLoader(), EmailLoader(),
            PdfLoader(time_limit_s=time_limit_s), DocxLoader(), PptxLoader(), OdtLoader(), EpubLoader()]


@dataclass
class LoadResult:
    path: Path
    document: Document | None = None
    reason: str | None = None
    loader: str | None = None
    seconds: float = 0.0


class LoaderRegistry:
    def __init__(self, loaders: Iterable[Any] = (), *, max_bytes: int = DEFAULT_MAX_BYTES,
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        self.by_ext: dict[str, Any] = {}
        self.max_bytes = max_bytes
        self.time_limit_s = time_limit_s
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

    def load(self, path: Path) -> LoadResult:
        path = Path(path)
        loader = self.loader_for(path)
        if loader is None:
            return LoadResult(path, reason=f"unsupported file type '{path.suffix or path.name}'")
        try:
            size = path.stat().st_size
        except OSError as exc:
            return LoadResult(path, reason=f"cannot read: {exc.strerror or exc}", loader=loader.name)
        if size == 0:
            return LoadResult(path, reason="empty file (0 bytes)", loader=loader.name)
        if size > self.max_bytes:
            return LoadResult(path, reason=f"too large ({size / 1e6:.0f} MB > {self.max_bytes / 1e6:.0f} MB limit)",
                              loader=loader.name)
        t0 = time.monotonic()
        try:
            doc = loader.load(path)
        except UnreadableDocument as exc:
            return LoadResult(path, reason=str(exc), loader=loader.name, seconds=time.monotonic() - t0)
        except MemoryError:
            return LoadResult(path, reason="ran out of memory reading it", loader=loader.name)
        except Exception as exc:  # a parser's bug on a strange file must not stop the run
            text = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
            return LoadResult(path, reason=f"could not be parsed ({detail})", loader=loader.name,
                              seconds=time.monotonic() - t0)
        seconds = time.monotonic() - t0
        if seconds > self.time_limit_s:
            return LoadResult(path, reason=f"reading took {seconds:.0f} s, over the {self.time_limit_s:.0f} s limit",
                              loader=loader.name, seconds=seconds)
        if not any(p.text.strip() for p in doc.parts):
            return LoadResult(path, reason="no text found", loader=loader.name, seconds=seconds)
        return LoadResult(path, document=doc, loader=loader.name, seconds=seconds)
