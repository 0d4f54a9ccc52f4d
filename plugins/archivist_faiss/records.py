"""A file's rows in the index, written or deleted in transactions that leave no half file.

A file is written in two steps, so that its words are searchable before its vectors are
computed (a 600-page PDF embeds for a minute and more):

1. :meth:`Records.write_file`: the file's new state, its passages and their keyword rows
   and a new generation, in one transaction (rule 7: a run killed midway leaves the old
   version of a file or the new one, never half of it). Passages given without vectors
   are stored with an empty embedding and the file's state is ``"embedding"``
   (:data:`~archivist_faiss.store.PENDING`): keyword search finds them at once.
2. :meth:`Records.write_vectors`, once per batch of embedded passages: their embeddings
   (and, with the last batch, the state ``"indexed"``) with a new generation. A run
   killed between two batches leaves the passages embedded so far; the next sync embeds
   the rest (:meth:`Records.unembedded`), never a passage twice or a second copy.

After each commit the vectors in memory follow. Removing a source or a deleted file goes
through :meth:`Records.delete_files`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update

from archivist import holds_lead, passage_meta
from archivist_faiss.loading import LoadResult
from archivist_faiss.store import FAILED, INDEXED, PENDING, SKIPPED, ChunkRow, File, now
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
                   fault: Fault | None = None) -> np.ndarray:
        """One transaction: the file's new state, its passages and keyword rows, a new
        generation; the passages' ids. Without ``vectors`` the passages are keyword-only
        and the file is "embedding" until :meth:`write_vectors` has written them all."""
        doc = result.document
        meta = passage_meta(path, doc, st.st_mtime, header=self.chunk_headers)
        # The passages that hold a paged document's lead get the header without it (archivist.holds_lead).
        lead_meta = passage_meta(path, doc, st.st_mtime, header=self.chunk_headers, first_page=False)
        old_ids: list[int] = []
        new_ids = np.zeros(0, dtype=np.int64)
        with self.Session.begin() as s:
            values = dict(source_id=source_id, path=str(path), size=st.st_size, mtime=st.st_mtime,
                          sha256=digest, status=_status(result, bool(chunks) and vectors is None),
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
                first = int(s.scalar(select(func.max(ChunkRow.id))) or 0) + 1
                new_ids = np.arange(first, first + len(chunks), dtype=np.int64)
                s.execute(insert(ChunkRow), [
                    dict(id=int(i), file_id=file_id, ordinal=c.ordinal, page=c.locator.page,
                         section=c.locator.section, start=c.locator.start, end=c.locator.end,
                         text=c.text, embedding=b"" if vectors is None else vectors[n].astype(np.float32).tobytes())
                    for n, (i, c) in enumerate(zip(new_ids, chunks))])
                s.execute(text("INSERT INTO chunks_fts(rowid, text, meta) VALUES (:id, :text, :meta)"),
                          [{"id": int(i), "text": c.text,
                            "meta": lead_meta if self.chunk_headers and holds_lead(doc, c.locator) else meta}
                           for i, c in zip(new_ids, chunks)])
            if fault:
                fault("in_transaction", path)
            gen = self.cache.bump(s)
        if self.cache.follow(gen):
            self.cache.vectors.remove(old_ids)
            if len(new_ids) and vectors is not None:
                self.cache.vectors.add(new_ids, vectors)
        return new_ids

    def write_vectors(self, file_id: int, ids: np.ndarray, vectors: np.ndarray, last: bool) -> None:
        """One transaction: embeddings for passages :meth:`write_file` stored without them
        (and, when ``last``, the file's state "indexed"), a new generation."""
        with self.Session.begin() as s:
            if len(ids):  # rows another process deleted meanwhile (a source removed) are left alone
                table = Table("chunks", ChunkRow.metadata)  # Core: an executemany, no per-row count check
                s.execute(update(table).where(table.c.id == bindparam("chunk")).values(embedding=bindparam("vector")), [
                    {"chunk": int(i), "vector": vectors[n].astype(np.float32).tobytes()} for n, i in enumerate(ids)])
            if last:
                s.execute(update(File).where(File.id == file_id, File.status == PENDING).values(status=INDEXED))
            gen = self.cache.bump(s)
        if self.cache.follow(gen) and len(ids):
            self.cache.vectors.add(np.asarray(ids, dtype=np.int64), vectors)

    def mark_failed(self, file_id: int, reason: str) -> None:
        """A file whose embedding failed for a reason that may pass: its passages go (it is
        read again at the next sync), its state says why."""
        with self.Session.begin() as s:
            chunk_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.file_id == file_id)))
            _delete_chunk_rows(s, chunk_ids)
            s.execute(update(File).where(File.id == file_id).values(status=FAILED, reason=reason))
            gen = self.cache.bump(s)
        if self.cache.follow(gen):
            self.cache.vectors.remove(chunk_ids)

    def unembedded(self, file_id: int) -> tuple[np.ndarray, list[str], int]:
        """The ids and texts of a file's passages still without a vector, in order, and
        how many passages the file has in all (an interrupted embedding resumes there)."""
        with self.Session() as s:
            rows = s.execute(select(ChunkRow.id, ChunkRow.text).where(
                ChunkRow.file_id == file_id, func.length(ChunkRow.embedding) == 0).order_by(ChunkRow.id)).all()
            total = int(s.scalar(select(func.count(ChunkRow.id)).where(ChunkRow.file_id == file_id)) or 0)
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows], total

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


def _status(result: LoadResult, pending: bool = False) -> str:
    if result.document is not None:
        return PENDING if pending else INDEXED
    return FAILED if result.transient else SKIPPED


def _delete_chunk_rows(s: Any, ids: list[int]) -> None:
    for n in range(0, len(ids), 500):
        part = ids[n:n + 500]
        s.execute(text(f"DELETE FROM chunks_fts WHERE rowid IN ({','.join(str(int(i)) for i in part)})"))
        s.execute(delete(ChunkRow).where(ChunkRow.id.in_(part)))
