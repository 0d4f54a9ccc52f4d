"""A file's rows in the index, written or deleted in one transaction.

A file's new state, its passages with their embeddings, their keyword rows and a new
generation are committed together (rule 7: a run killed midway leaves the old version of
a file or the new one, never half of it); only then do the vectors in memory follow.
Ingestion writes through :meth:`Records.write_file`; removing a source or a deleted file
goes through :meth:`Records.delete_files`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, text, update

from archivist import Document
from archivist_faiss.loading import LoadResult
from archivist_faiss.store import FAILED, INDEXED, SKIPPED, ChunkRow, File, now
from archivist_faiss.vector_cache import VectorCache

# (point, path): a test's way to fail at "before_commit" or "in_transaction"
Fault = Callable[[str, Path], None]


class Records:
    def __init__(self, session_factory: Any, cache: VectorCache, chunk_headers: bool = True) -> None:
        self.Session = session_factory
        self.cache = cache
        self.chunk_headers = chunk_headers

    def write_file(self, source_id: int, path: Path, st: os.stat_result, digest: str, result: LoadResult,
                   chunks: list[Any], vectors: np.ndarray | None, record: File | None,
                   fault: Fault | None = None) -> None:
        """One transaction: the file's new state, its passages and keyword rows, a new generation."""
        doc = result.document
        meta = metadata_text(path, doc, st.st_mtime, lead=self.chunk_headers)
        old_ids: list[int] = []
        new_ids = np.zeros(0, dtype=np.int64)
        with self.Session.begin() as s:
            values = dict(source_id=source_id, path=str(path), size=st.st_size, mtime=st.st_mtime,
                          sha256=digest, status=_status(result),
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
            gen = self.cache.bump(s)
        if self.cache.follow(gen):
            self.cache.vectors.remove(old_ids)
            if len(new_ids):
                assert vectors is not None  # new_ids are the chunks' (above)
                self.cache.vectors.add(new_ids, vectors)

    def touch(self, file_id: int, st: os.stat_result) -> None:
        """Record a new size and time for a file whose content did not change."""
        with self.Session.begin() as s:
            s.execute(update(File).where(File.id == file_id).values(size=st.st_size, mtime=st.st_mtime))

    def delete_files(self, file_ids: list[int]) -> int:
        """Delete files with their passages; the number deleted."""
        if not file_ids:
            return 0
        with self.Session.begin() as s:
            chunk_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.file_id.in_(file_ids))))
            _delete_chunk_rows(s, chunk_ids)
            s.execute(delete(File).where(File.id.in_(file_ids)))
            gen = self.cache.bump(s)
        if self.cache.follow(gen):
            self.cache.vectors.remove(chunk_ids)
        return len(file_ids)


def _status(result: LoadResult) -> str:
    if result.document is not None:
        return INDEXED
    return FAILED if result.transient else SKIPPED


def _delete_chunk_rows(s: Any, ids: list[int]) -> None:
    for n in range(0, len(ids), 500):
        part = ids[n:n + 500]
        s.execute(text(f"DELETE FROM chunks_fts WHERE rowid IN ({','.join(str(int(i)) for i in part)})"))
        s.execute(delete(ChunkRow).where(ChunkRow.id.in_(part)))


def metadata_text(path: Path, doc: Document | None, mtime: float, lead: bool = True) -> str:
    """What people search files by: name, title, folders, dates (the FTS ``meta`` column);
    with ``lead``, the rest of the passages' header too (metadata, the first page's start:
    :func:`~archivist_faiss.headers.header_text`)."""
    date = datetime.fromtimestamp(mtime)
    words = [path.name, path.stem.replace("_", " ").replace("-", " "), doc.title if doc and doc.title else "",
             " ".join(path.parent.parts[-3:]), date.strftime("%Y-%m-%d %B %Y %b")]
    if doc is not None:
        for key in ("from", "date", "author"):
            if doc.metadata.get(key):
                words.append(str(doc.metadata[key]))
        if lead:
            from archivist_faiss.headers import header_text

            words.append(header_text(path, doc))
    return " ".join(w for w in words if w)
