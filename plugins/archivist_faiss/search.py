"""Finding passages: dense (FAISS), keyword (SQLite FTS5), and the two fused (:func:`archivist.fuse`).

Dense search finds passages that mean what the query means; keyword search finds the
exact words (names, codes) that embed poorly; the fusion weighs the two by how far they
agree. ``min_similarity`` lets the assistant tell "nothing relevant" from weak hits. The
vectors are the :class:`VectorCache`'s, so a search sees what other processes wrote.

A file being indexed is searchable by its words before its vectors are written
(:mod:`records`). Its passages that keyword search ranks among the first
:data:`UNEMBEDDED_PER_QUERY` are embedded here, for this query only, so the fusion and
the ``min_similarity`` gate judge them by meaning as they will once their vectors come.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from archivist import MAX_NAMED_FILES, Locator, Passage, content_query, fuse, identifiers, named_first
from archivist_faiss import fusion
from archivist_faiss.catalog import on_disk
from archivist_faiss.encoder import LazyEncoder
from archivist_faiss.store import ChunkRow, File
from archivist_faiss.vector_cache import VectorCache


@dataclass
class Hit:
    """One search result: a passage with where it is and its score."""

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


# Passages without a vector yet (a file being embedded) embedded per query, at most: the
# keyword side's first ones. About 40 ms each on two cores; none once every file is embedded.
UNEMBEDDED_PER_QUERY = 10
# Named files (archivist.identifiers) with more passages than this are not ranked whole by the hybrid
# (Search.within): their passages' vectors are read from SQLite, about 1.5 kB each. A
# 619-page report has about 2,000.
WITHIN_MAX_PASSAGES = 20_000


class Search:
    def __init__(self, engine: Any, session_factory: Any, encoder: LazyEncoder, cache: VectorCache) -> None:
        self.engine = engine
        self.Session = session_factory
        self.encoder = encoder
        self.cache = cache
        self._seen_passages = False

    def dense(self, query: str, n: int, vec: np.ndarray | None = None) -> list[tuple[int, float]]:
        if vec is None:
            vec = self.encoder.embedder.embed([query])[0]
        return self.cache.ensure().search(vec, n)

    def unembedded(self, vec: np.ndarray, keyword: list[tuple[int, float]],
                   dense: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """``dense`` with the cosines of the passages among the first
        :data:`UNEMBEDDED_PER_QUERY` of ``keyword`` that have no vector yet (a file
        being embedded), computed now; ordered like a dense ranking (ties by id)."""
        found = {i for i, _ in dense}
        ids = [i for i, _ in keyword[:UNEMBEDDED_PER_QUERY] if i not in found]
        if not ids:
            return dense
        with self.engine.connect() as conn:
            rows = conn.execute(select(ChunkRow.id, ChunkRow.text).where(
                ChunkRow.id.in_(ids), func.length(ChunkRow.embedding) == 0).order_by(ChunkRow.id)).all()
        if not rows:
            return dense
        vecs = self.encoder.embedder.embed([r[1] for r in rows])
        extra = [(int(r[0]), float(np.dot(v, vec))) for r, v in zip(rows, vecs)]
        return sorted(dense + extra, key=lambda kv: (-kv[1], kv[0]))

    def keyword(self, query: str, n: int, joiner: str = "OR",
                files: Collection[int] | None = None) -> list[tuple[int, float]]:
        """BM25 over the passage text and its header (``meta``); only the passages of
        ``files`` when given (:meth:`within`)."""
        match = fusion.fts_query(query, joiner=joiner)
        if match is None:
            return []
        scope = "" if files is None else (
            f" AND rowid IN (SELECT id FROM chunks WHERE file_id IN ({','.join(str(int(f)) for f in sorted(files))}))")
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT rowid, bm25(chunks_fts, 1.0, {float(fusion.META_WEIGHT)}) AS r "
                                     f"FROM chunks_fts WHERE chunks_fts MATCH :q{scope} ORDER BY r LIMIT :n"),
                                {"q": match, "n": n}).all()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def empty(self) -> bool:
        """Whether nothing is indexed (then there is no need to load, or build, the encoder)."""
        if not self._seen_passages:
            if self.cache.passage_count() == 0:
                return True
            self._seen_passages = True
        return False

    def search(self, query: str, k: int, mode: str = "hybrid", min_similarity: float = 0.0) -> list[Hit]:
        """The ``k`` best passages: ``mode`` is "hybrid" (default), "dense" or "keyword";
        ``min_similarity`` drops passages less similar to the query than that (cosine)."""
        depth = max(50, 4 * k)
        if mode == "dense":  # ``depth``, not ``k``: a gone file's passages leave room for the next
            ranked = self.dense(query, depth)
            similar = dict(ranked)
        elif mode == "keyword":
            ranked = self.keyword(query, depth)
            similar = {}
            if min_similarity > 0:
                vec = self.encoder.embedder.embed([query])[0]
                similar = dict(self.unembedded(vec, ranked, self.dense(query, depth, vec)))
        else:
            vec = self.encoder.embedder.embed([query])[0]
            keyword = self.keyword(query, depth)
            dense = self.unembedded(vec, keyword, self.dense(query, depth, vec))
            similar = dict(dense)
            ranked = fuse(dense, keyword)
        named = self.named_files(query)
        if named:  # the question names its document: its passages first, the hybrid's ranked whole
            inside = self.within(query, vec, named) if mode == "hybrid" else None
            similar.update(dict(inside[1] if inside else ()))
            ranked = named_first(ranked, self.files_of([i for i, _ in ranked]), named, inside and inside[0])
        if min_similarity > 0:
            # Similar enough in meaning, or holding every word of the query (short keyword
            # queries such as a name embed poorly but match exactly). A passage outside the
            # dense top ``depth`` counts as dissimilar.
            exact = {i for i, _ in self.keyword(query, depth, joiner="AND")}
            ranked = [(i, s) for i, s in ranked if similar.get(i, -1.0) >= min_similarity or i in exact]
        return self._hits(ranked, k)

    def named_files(self, query: str) -> set[int]:
        """The files an identifier in ``query`` names (:func:`archivist.identifiers`): for each, the files
        whose name or header holds it, kept when they are at most :data:`MAX_NAMED_FILES`."""
        named: set[int] = set()
        for word in identifiers(query):
            with self.engine.connect() as conn:
                files = {int(r[0]) for r in conn.execute(text(
                    "SELECT DISTINCT c.file_id FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                    "WHERE chunks_fts MATCH :q LIMIT :n"), {"q": f'meta : "{word}"', "n": MAX_NAMED_FILES + 1}).all()}
            if len(files) <= MAX_NAMED_FILES:
                named |= files
        return named

    def within(self, query: str, vec: np.ndarray, named: set[int]
               ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]] | None:
        """The hybrid ranking of every passage of the ``named`` files, and its dense side
        (for ``min_similarity``); None when they hold more than
        :data:`WITHIN_MAX_PASSAGES`.

        Why not the collection-wide rankings: their first 50 may hold few passages of a
        long report, and a passage outside the dense 50 gets the lowest cosine; here
        every passage has its own. The keyword side leaves out the question's words
        that are in the files' name or header (:func:`archivist.content_query`), which
        chose the file and inside it would choose the title page. Measured on the
        reports (bench/retrieval.py --compare): hybrid R@1 0.894 (named first) -> 0.938."""
        files = ",".join(str(int(f)) for f in sorted(named))
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count(ChunkRow.id)).where(ChunkRow.file_id.in_(named))).scalar() or 0
            if count > WITHIN_MAX_PASSAGES:
                return None
            rows = conn.execute(select(ChunkRow.id, ChunkRow.embedding).where(
                ChunkRow.file_id.in_(named), func.length(ChunkRow.embedding) > 0).order_by(ChunkRow.id)).all()
            # A file's first passage holds its lead and is indexed without it
            # (archivist.holds_lead); its last has the whole header.
            heads = [str(m) for (m,) in conn.execute(text(
                f"SELECT meta FROM chunks_fts WHERE rowid IN (SELECT min(id) FROM chunks WHERE file_id IN ({files}) "
                f"GROUP BY file_id UNION SELECT max(id) FROM chunks WHERE file_id IN ({files}) GROUP BY file_id)"))]
        keyword = self.keyword(content_query(query, " ".join(heads)), max(50, count), files=named)
        dense: list[tuple[int, float]] = []
        if rows:
            ids = np.array([int(r[0]) for r in rows])
            cosines = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1) @ vec
            dense = sorted(zip(ids.tolist(), cosines.astype(float).tolist()), key=lambda kv: (-kv[1], kv[0]))
        dense = self.unembedded(vec, keyword, dense)
        if not dense and not keyword:
            return None
        return fuse(dense, keyword), dense

    def files_of(self, ids: list[int]) -> dict[int, int]:
        """Passage id -> file id, for ``ids``."""
        if not ids:
            return {}
        with self.engine.connect() as conn:
            return {int(i): int(f) for i, f in conn.execute(
                select(ChunkRow.id, ChunkRow.file_id).where(ChunkRow.id.in_(ids))).all()}

    def _hits(self, ranked: list[tuple[int, float]], k: int) -> list[Hit]:
        """The first ``k`` of ``ranked`` whose file is still on the disk. A file deleted
        (or a source folder gone) since the last sync is never cited: one ``stat`` per
        file among the hits, and the next passages take the places of its own."""
        hits: list[Hit] = []
        there: dict[str, bool] = {}
        for start in range(0, len(ranked), max(k, 1)):
            batch = ranked[start:start + max(k, 1)]
            ids = [i for i, _ in batch]
            with self.Session() as s:
                rows = {c.id: (c, f) for c, f in s.execute(
                    select(ChunkRow, File).join(File, ChunkRow.file_id == File.id).where(ChunkRow.id.in_(ids)))}
            for i, score in batch:
                if i not in rows:
                    continue  # deleted since the vector cache was written
                c, f = rows[i]
                if f.path not in there:
                    there[f.path] = on_disk(f.path)
                if not there[f.path]:
                    continue
                hits.append(Hit(f.path, c.page, c.start, c.end, c.text, round(float(score), 6), f.title,
                                c.section, c.id))
                if len(hits) == k:
                    return hits
        return hits
