"""The index of one home, put together: what the retriever, the library, tests and benchmarks open.

Everything is kept under ``<home>/plugins/faiss/``: ``index.db`` (SQLite through
SQLAlchemy, :mod:`store`: sources, files, passages with their embeddings and locators,
the FTS5 table) and ``vectors.faiss`` (a rebuildable cache, :mod:`vectors`). The parts
each hold one job: :mod:`sources` (what the user added), :mod:`ingestion` (bringing it
up to date), :mod:`records` (a file's rows in one transaction), :mod:`vector_cache`
(the vectors in memory, fresh across processes) and :mod:`search`. :class:`Index`
wires them over one database and one lock: FAISS indexes are not safe to change while
searched, and the folder watcher syncs on its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from archivist import SyncReport
from archivist_faiss.catalog import DATABASE
from archivist_faiss.encoder import LazyEncoder
from archivist_faiss.ingestion import Ingestion, Progress
from archivist_faiss.loading import LoaderRegistry, builtin_loaders
from archivist_faiss.reading import Limits, Reader
from archivist_faiss.records import Fault, Records
from archivist_faiss.search import Hit, Search
from archivist_faiss.sources import Sources
from archivist_faiss.store import open_engine, session_factory
from archivist_faiss.sync_lock import SyncLock
from archivist_faiss.vector_cache import VectorCache
from archivist_faiss.vectors import DEFAULT_APPROX_THRESHOLD, VectorIndex

PLUGIN_NAME = "faiss"
DIMENSIONS = 384


def data_dir(home: Path) -> Path:
    """Same folder as ``PluginContext(home).data_dir("faiss")``."""
    path = Path(home) / "plugins" / PLUGIN_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_index(home: Path, **kwargs: Any) -> Index:
    return Index(Path(home), **kwargs)


class Index:
    """The index under ``<home>/plugins/faiss``; ``embedder`` (or ``embedder_path``)
    replaces the home's encoder, ``loaders`` add to the built-in ones (a later one wins).
    Files are read in a child process under ``limits`` (:mod:`reading`; ``safe_mode``
    is the app's, for the child's plugins); ``isolate=False`` reads them here.
    ``chunk_headers``: put each passage's document header in the keyword index
    (:func:`archivist.passage_header`; off only to measure what it brings, ``bench/retrieval.py``)."""

    def __init__(self, home: Path, *, embedder: Any = None, embedder_path: Path | None = None,
                 loaders: Iterable[Any] = (), approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
                 max_tokens: int = 200, overlap_tokens: int = 16, limits: Limits | None = None,
                 isolate: bool = True, safe_mode: bool = False, chunk_headers: bool = True) -> None:
        self.home = Path(home)
        self.dir = data_dir(self.home)
        self.engine = open_engine(self.dir / DATABASE)
        self.Session = session_factory(self.engine)
        self.lock = threading.RLock()
        self.encoder = LazyEncoder(self.home, embedder=embedder, embedder_path=embedder_path,
                                   max_tokens=max_tokens, overlap_tokens=overlap_tokens)
        self.cache = VectorCache(self.engine, self.Session,
                                 VectorIndex(self.dir / "vectors.faiss", DIMENSIONS, approx_threshold))
        self.limits = limits or Limits()
        self.registry = LoaderRegistry(builtin_loaders(self.limits.time_s), time_limit_s=self.limits.time_s,
                                       page_time_s=self.limits.page_s)
        for loader in loaders:
            self.registry.register(loader)
        self.reader: Reader | LoaderRegistry = (
            Reader(self.registry, self.home, safe_mode=safe_mode, limits=self.limits) if isolate else self.registry)
        records = Records(self.Session, self.cache, chunk_headers=chunk_headers)
        self.source_list = Sources(self.Session, records, self.cache)
        self.ingestion = Ingestion(self.source_list, records, self.reader, self.encoder, self.cache,
                                   SyncLock(self.dir / "sync.lock"))
        self.searcher = Search(self.engine, self.Session, self.encoder, self.cache)

    # ------------------------------------------------------------------ sources

    def add_source(self, path: Path | str) -> str:
        return self.source_list.add(path)

    def remove_source(self, path: Path | str) -> int:
        """Forget a source and everything indexed from it; the files removed."""
        with self.lock:
            return self.source_list.remove(path)

    def files(self) -> list[dict[str, Any]]:
        return self.source_list.files()

    # ------------------------------------------------------------------ sync

    def index(self, paths: Iterable[Path | str], progress: Progress | None = None,
              cancel: threading.Event | None = None, fault: Fault | None = None) -> SyncReport:
        """Add ``paths`` as sources and bring them up to date."""
        roots = [self.add_source(p) for p in paths]
        return self.sync(roots, progress, cancel, fault)

    def sync(self, roots: Sequence[str] | None = None, progress: Progress | None = None,
             cancel: threading.Event | None = None, fault: Fault | None = None) -> SyncReport:
        with self.lock:
            return self.ingestion.sync(roots, progress, cancel, fault)

    def sync_paths(self, paths: Iterable[Path]) -> SyncReport:
        with self.lock:
            return self.ingestion.sync_paths(paths)

    # ------------------------------------------------------------------ search

    def search(self, query: str, k: int = 5, mode: str = "hybrid", min_similarity: float = 0.0) -> list[Hit]:
        if not query.strip() or k <= 0 or self.searcher.empty():
            return []
        with self.lock:
            return self.searcher.search(query, k, mode, min_similarity)

    def keyword(self, query: str, n: int, joiner: str = "OR") -> list[tuple[int, float]]:
        return self.searcher.keyword(query, n, joiner)

    def chunk_count(self) -> int:
        """Passages searchable now (0 before anything is indexed)."""
        return self.cache.passage_count()

    _chunk_count = chunk_count  # the name benchmarks use

    # ------------------------------------------------------------------ parts

    @property
    def embedder(self) -> Any:
        return self.encoder.embedder

    @property
    def overlap_tokens(self) -> int:
        return self.encoder.overlap_tokens

    @property
    def vectors(self) -> VectorIndex:
        return self.cache.vectors

    def ensure_vectors(self) -> VectorIndex:
        with self.lock:
            return self.cache.ensure()

    def close(self) -> None:
        with self.lock:
            if isinstance(self.reader, Reader):
                self.reader.close()
        self.engine.dispose()
