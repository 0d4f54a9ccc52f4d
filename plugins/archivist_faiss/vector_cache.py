"""The vectors in memory, kept in step with the database when other processes write too.

Several processes use one index: the window searches while its indexing child (or an
``archivist index`` run) writes. Nothing is shared in memory, only ``index.db`` and the
FAISS file, so each write moves a ``generation`` counter stored in the database, in the
same transaction. Before each search :meth:`VectorCache.ensure` compares the stored
generation with the one the vectors in memory reflect, at the cost of one small read,
and reloads them when another process wrote. After this process's own write the vectors
follow it in memory when nobody else wrote in between (:meth:`VectorCache.follow`),
and are otherwise dropped and reloaded from SQLite, which holds both writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from archivist_faiss.store import ChunkRow, Meta
from archivist_faiss.vectors import VectorIndex


class VectorCache:
    """The :class:`VectorIndex` of this process and the generation it reflects."""

    def __init__(self, engine: Any, session_factory: Any, vectors: VectorIndex) -> None:
        self.engine = engine
        self.Session = session_factory
        self.vectors = vectors
        self.ready = False
        self.generation_held: int | None = None  # the generation the in-memory vectors reflect

    def generation(self) -> int:
        with self.Session() as s:
            return int(s.get(Meta, "generation").value)

    def passage_count(self) -> int:
        """Passages stored, with or without their vector (searchable by keyword either way)."""
        with self.Session() as s:
            return int(s.scalar(select(func.count(ChunkRow.id))) or 0)

    def vector_count(self) -> int:
        """Passages with their vector (a file being embedded has some without)."""
        with self.Session() as s:
            return int(s.scalar(select(func.count(ChunkRow.id)).where(func.length(ChunkRow.embedding) > 0)) or 0)

    def ensure(self) -> VectorIndex:
        """Load the FAISS file, or rebuild it from SQLite when it is missing or stale,
        and reload it when another process wrote since it was loaded."""
        if self.ready and self.generation() != self.generation_held:
            self.ready = False
        if not self.ready:
            gen, count = self.generation(), self.vector_count()
            if not self.vectors.load(gen, count):
                self.vectors.rebuild(count, self._all_vectors)
                self.vectors.save(gen)
            self.generation_held = gen
            self.ready = True
        return self.vectors

    @staticmethod
    def bump(session: Any) -> int:
        """Move the stored generation on, inside the writer's transaction; the new value."""
        session.execute(text("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"))
        return int(session.get(Meta, "generation", populate_existing=True).value)

    def follow(self, gen: int) -> bool:
        """After this process's write moved the generation to ``gen``: whether the
        in-memory vectors may follow it (the caller then applies the same change to
        them). If another process wrote in between, they are dropped instead."""
        if self.ready and self.generation_held == gen - 1:
            self.generation_held = gen
            return True
        self.ready = False
        return False

    def save(self) -> None:
        """Write the vectors when they changed, stamped with what they reflect (which
        another process may have passed: then the stamp makes the next reader rebuild)."""
        if not self.ready:
            return
        if self.vectors.needs_rebuild():
            self.vectors.rebuild(self.vectors.count, self._all_vectors)
        if self.vectors.dirty:
            assert self.generation_held is not None  # set whenever ready is
            self.vectors.save(self.generation_held)

    def _all_vectors(self, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = 0
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(select(ChunkRow.id, ChunkRow.embedding).where(ChunkRow.id > last)
                                    .order_by(ChunkRow.id).limit(batch)).all()
                if not rows:
                    return
                last = int(rows[-1][0])
                rows = [r for r in rows if r[1]]  # b"": not embedded yet
                if not rows:
                    continue
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                yield ids, vecs
