"""One collection in a PostgreSQL database: a library to index into and a retriever to ask.

:class:`TeamCollection` is an ``archivist.Library`` (sources, sync, skipped files, count)
and an ``archivist.Retriever`` (hybrid search: pgvector's HNSW index by cosine distance,
PostgreSQL full-text search over each passage's text and header, fused as the local
library fuses, :func:`archivist.fuse`; a question that names a document by an
identifier gets that document's passages first, ranked whole, as the local library
ranks them: :meth:`TeamCollection.within`). It is
also ``archivist.Countable``, ``archivist.Closable``, ``archivist.SharedCollection`` (the
user chooses it by its name) and ``archivist.Writable`` (a member of its role who is not
one of its writers may only read it). Every query runs as the user the collection was
added with, so row-level security decides what it sees and changes
(:mod:`archivist_team.schema`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archivist import (
    MAX_NAMED_FILES,
    ArchivistError,
    LibrarySource,
    Locator,
    Passage,
    SkippedFile,
    SyncProgress,
    SyncReport,
    content_query,
    fuse,
    identifiers,
    named_first,
)
from archivist_team import connection, ingestion, ranking, schema
from archivist_team.encoder import LazyEncoder

# Cosine similarity below which a passage is not offered to the model: the local
# library's threshold, measured with the same encoder (see archivist_faiss.MIN_SIMILARITY).
MIN_SIMILARITY = 0.30
# Candidates the HNSW search visits (pgvector's hnsw.ef_search), at least the depth asked.
# bench/team.py, 50,000 passages: recall@10 against exact search 0.85 at pgvector's default
# 40, 0.92 at 100, 0.986 at 200, each about 1 ms (p50) on 2 cores.
EF_SEARCH = 200
# How long the collection's size and mean passage length (for BM25) are taken as known.
STATS_SECONDS = 60.0
# Named files with more passages than this keep "named first" instead of being ranked
# whole (within): every passage's cosine is computed for the question. The local
# library's bound (archivist_faiss.search.WITHIN_MAX_PASSAGES).
WITHIN_MAX_PASSAGES = 20_000
# The tables indexing writes to (sources, files, skipped files, passages).
_WRITTEN = ("archivist_sources", "archivist_files", "archivist_skipped", "archivist_passages")


class TeamCollection:
    """Collection ``collection`` of the database at ``url`` (see the module's docstring)."""

    def __init__(self, collection: str, url: str, password: str | None = None, *,
                 encoder: LazyEncoder | None = None, home: Path | None = None,
                 loaders: Callable[[], Sequence[Any]] | None = None,
                 min_similarity: float = MIN_SIMILARITY) -> None:
        self.collection = collection
        self.name = f"team:{collection}"
        self.url, self.password = url, password
        self.encoder = encoder or LazyEncoder(home)
        self.find_loaders = loaders or (lambda: [])
        self.min_similarity = min_similarity
        self._conn: Any = None
        self._stats_read: tuple[float, int, float] | None = None
        self._lock = threading.RLock()

    # -- the connection -------------------------------------------------------------

    @property
    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            conn = connection.connect(self.url, self.password)
            try:
                schema.check(conn, connection.where(self.url))
                connection.with_vectors(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def visible(self) -> bool:
        """Whether the connected user may use this collection (it exists and they are a
        member of its role): row-level security hides it otherwise."""
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM archivist_collections WHERE name = %s",
                                    (self.collection,)).fetchone()
        return row is not None

    def read_only(self) -> str:
        """"" when the connected user may change this collection (archivist.Writable):
        they are a member of its writer role and hold the tables' privileges to write, as
        the server will check; otherwise why not, in one line."""
        with self._lock:
            user, seen, writes = self.conn.execute(
                "SELECT current_user, c.name IS NOT NULL, "
                "coalesce(pg_has_role(current_user, coalesce(c.writer, c.role), 'MEMBER'), false) "
                + "".join(f"AND has_table_privilege('{t}', '{p}') " for t in _WRITTEN for p in ("INSERT", "DELETE"))
                + "FROM (SELECT 1) AS one LEFT JOIN archivist_collections c ON c.name = %s",
                (self.collection,)).fetchone()
        if not seen:
            return f"shared collection {self.collection}: {user} is not a member of its role"
        return "" if writes else f"shared collection {self.collection}: read-only for {user}"

    # -- reading (Library, Countable) ------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return int(self.conn.execute("SELECT count(*) FROM archivist_passages WHERE collection = %s",
                                         (self.collection,)).fetchone()[0])

    def sources(self) -> list[LibrarySource]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT s.path, s.added_at, "
                "(SELECT count(*) FROM archivist_files f WHERE f.collection = s.collection AND f.source = s.path), "
                "(SELECT count(*) FROM archivist_skipped k WHERE k.collection = s.collection AND k.source = s.path), "
                "(SELECT count(*) FROM archivist_passages p JOIN archivist_files f ON p.file_id = f.id "
                " WHERE f.collection = s.collection AND f.source = s.path) "
                "FROM archivist_sources s WHERE s.collection = %s ORDER BY s.path", (self.collection,)).fetchall()
        return [LibrarySource(path, added.isoformat(timespec="seconds"), int(files), int(skipped), int(passages),
                              not Path(path).exists()) for path, added, files, skipped, passages in rows]

    def skipped(self) -> list[SkippedFile]:
        with self._lock:
            rows = self.conn.execute("SELECT path, reason FROM archivist_skipped WHERE collection = %s ORDER BY path",
                                     (self.collection,)).fetchall()
        return [SkippedFile(p, r) for p, r in rows]

    # -- changing (Library) ------------------------------------------------------------

    def add_source(self, path: Path) -> str:
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise ArchivistError(f"{resolved} does not exist")
        key = str(resolved)
        with self._lock, self.conn.transaction():
            self.conn.execute("INSERT INTO archivist_sources (collection, path) VALUES (%s, %s) "
                              "ON CONFLICT DO NOTHING", (self.collection, key))
        return key

    def remove_source(self, path: str) -> int:
        with self._lock, self.conn.transaction():
            found = self.conn.execute("DELETE FROM archivist_sources WHERE collection = %s AND path = %s "
                                      "RETURNING 1", (self.collection, path)).fetchone()
            if found is None:
                raise ArchivistError(f"{path} is not a source of collection {self.collection}")
            removed = self.conn.execute("DELETE FROM archivist_files WHERE collection = %s AND source = %s",
                                        (self.collection, path)).rowcount
            self.conn.execute("DELETE FROM archivist_skipped WHERE collection = %s AND source = %s",
                              (self.collection, path))
        return int(removed)

    def _known(self, source: str) -> dict[str, tuple[str, str | None, bool]]:
        """The files recorded under ``source``: path -> (sha256, skip reason or None, whether
        it has its header: False for a file indexed before schema version 3)."""
        rows = self.conn.execute(
            "SELECT path, sha256, NULL, meta <> '' FROM archivist_files WHERE collection = %s AND source = %s "
            "UNION ALL SELECT path, sha256, reason, true FROM archivist_skipped WHERE collection = %s AND source = %s",
            (self.collection, source, self.collection, source)).fetchall()
        return {p: (h, r, bool(headed)) for p, h, r, headed in rows}

    def plan(self, roots: Sequence[str] | None = None) -> list[tuple[str, list[Path]]]:
        """Each source to sync with the files under it now, in order."""
        with self._lock:
            keys = [s.path for s in self.sources()]
        if roots is not None:
            unknown = [r for r in roots if r not in keys]
            if unknown:
                raise ArchivistError(f"{unknown[0]} is not a source of collection {self.collection}")
            keys = list(roots)
        return [(key, _files_under(Path(key))) for key in keys]

    def sync(self, roots: Sequence[str] | None = None, progress: Callable[[SyncProgress], None] | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        report = SyncReport()
        started = time.perf_counter()
        loaders = list(self.find_loaders())
        for key, files in self.plan(roots):
            if report.cancelled:
                break
            with self._lock:
                known = self._known(key)
            for done, file in enumerate(files):
                path = str(file)
                if progress:
                    progress(SyncProgress(key, done, len(files), path))
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    break
                try:
                    sha = ingestion.file_hash(file)
                except OSError as exc:
                    item: ingestion.Prepared | ingestion.NotIndexed = ingestion.NotIndexed(
                        path, "", f"cannot read it ({exc.strerror or exc})")
                else:
                    before = known.get(path)
                    if before is not None and before[0] == sha:
                        self.unchanged(file, before, report)
                        continue
                    part = None if progress is None else _part_progress(progress, key, done, len(files), path)
                    item = ingestion.prepare(file, sha, loaders, self.encoder, part)
                self.write(key, item)
                if isinstance(item, ingestion.NotIndexed):
                    report.skipped.append(SkippedFile(path, item.reason))
                else:
                    report.indexed.append(path)
                    report.passages += len(item.chunks)
                    report.pages += item.pages
            else:
                gone = sorted(set(known) - {str(f) for f in files})
                with self._lock:
                    for path in gone:
                        ingestion.forget(self.conn, self.collection, path)
                report.removed += [p for p in gone if known[p][1] is None]
                if progress:
                    progress(SyncProgress(key, len(files), len(files)))
        report.seconds = time.perf_counter() - started
        return report

    def unchanged(self, file: Path, before: tuple[str, str | None, bool], report: SyncReport) -> None:
        """Count a file whose content the collection holds already (``before``: what
        :meth:`_known` says of it) as unchanged or skipped again; one indexed before
        schema version 3 gets its header now (read again, not embedded again)."""
        if before[1] is not None:
            report.skipped.append(SkippedFile(str(file), before[1]))
            return
        report.unchanged += 1
        if not before[2]:
            with self._lock:
                ingestion.add_headers(self.conn, self.collection, file, list(self.find_loaders()))

    def write(self, source: str, item: ingestion.Prepared | ingestion.NotIndexed) -> None:
        """Write one prepared file (its passages in one transaction)."""
        if isinstance(item, ingestion.Prepared):
            self.check_dimensions(int(item.vectors.shape[1]))
        with self._lock:
            ingestion.write(self.conn, self.collection, source, item)
            self._stats_read = None

    def check_dimensions(self, dim: int) -> None:
        if dim != schema.DIM:
            raise ArchivistError(f"the sentence encoder gives {dim}-dimensional vectors, but collection "
                                 f"{self.collection} stores {schema.DIM}-dimensional ones")

    # -- searching (Retriever) ---------------------------------------------------------

    def dense(self, vector: Any, n: int) -> list[tuple[int, float]]:
        with self._lock, self.conn.transaction():
            self.conn.execute(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, n)}")
            self.conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = self.conn.execute(
                "SELECT id, 1 - (embedding <=> %s) AS similarity FROM archivist_passages "
                "WHERE collection = %s ORDER BY embedding <=> %s LIMIT %s",
                (vector, self.collection, vector, n)).fetchall()
        return sorted(((int(i), float(s)) for i, s in rows), key=lambda r: (-r[1], r[0]))

    def exact(self, vector: Any, n: int) -> list[tuple[int, float]]:
        """Dense search without the index (every passage compared): the truth HNSW approximates."""
        with self._lock, self.conn.transaction():
            self.conn.execute("SET LOCAL enable_indexscan = off")
            rows = self.conn.execute(
                "SELECT id, 1 - (embedding <=> %s) AS similarity FROM archivist_passages "
                "WHERE collection = %s ORDER BY embedding <=> %s, id LIMIT %s",
                (vector, self.collection, vector, n)).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def keyword(self, query: str, n: int, joiner: str = "|",
                files: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """BM25 over the passages' text and header; only the passages of ``files`` when
        given (:meth:`within`), their words' rarity still that of the whole collection."""
        match = ranking.tsquery(query, joiner=joiner)
        if match is None:
            return []
        with self._lock:
            if joiner == "&":  # (only which passages hold every word matters, not their order)
                rows = self.conn.execute(
                    "SELECT id, 0 FROM archivist_passages WHERE collection = %s "
                    "AND tsv @@ to_tsquery('simple', %s) LIMIT %s", (self.collection, match, n)).fetchall()
            else:
                # BM25 over a bounded set of candidates (ranking.bm25_sql): at a million
                # passages the full BM25_SQL spent 3 s unnesting every matching passage.
                passages, mean_length = self._stats()
                params = ranking.bm25_params(query, self.collection, passages, mean_length, n, files=files)
                assert params is not None  # (the query has words: ``match`` is not None)
                rows = self.conn.execute(ranking.bm25_sql(len(ranking.terms(query))), params).fetchall()
        return [(int(i), float(r)) for i, r in rows]

    def holding_every_word(self, query: str, ids: Sequence[int]) -> set[int]:
        """Which of the passages ``ids`` hold every word of ``query``.

        Looked up by id (the primary key; the policy and ``@@`` then filter those rows
        alone), not by a search for every passage holding the words: under row-level
        security that search reads the whole collection (1.7 s at a million passages).
        """
        match = ranking.tsquery(query, joiner="&")
        if match is None or not ids:
            return set()
        with self._lock:
            rows = self.conn.execute(
                "SELECT id FROM archivist_passages WHERE id = ANY(%s) AND collection = %s "
                "AND tsv @@ to_tsquery('simple', %s)", (list(ids), self.collection, match)).fetchall()
        return {int(i) for i, in rows}

    def _stats(self) -> tuple[int, float]:
        """The collection's passages and their mean length in words, read at most once a minute."""
        if self._stats_read is None or time.monotonic() - self._stats_read[0] > STATS_SECONDS:
            n, mean = self.conn.execute(ranking.STATS_SQL, (self.collection,)).fetchone()
            self._stats_read = (time.monotonic(), int(n), float(mean or 1.0))
        return self._stats_read[1], self._stats_read[2]

    def search(self, query: str, k: int = 5, mode: str = "hybrid",
               min_similarity: float | None = None) -> list[Passage]:
        """The ``k`` best passages; ``mode`` "hybrid" (default), "dense" or "keyword"."""
        threshold = self.min_similarity if min_similarity is None else min_similarity
        depth = max(50, 4 * k)
        vector = self.encoder.embedder.embed([query])[0] if mode != "keyword" or threshold > 0 else None
        dense = self.dense(vector, depth) if vector is not None else []
        similar = dict(dense)
        if mode == "dense":
            ranked = dense
        elif mode == "keyword":
            ranked = self.keyword(query, depth)
        else:
            ranked = fuse(dense, self.keyword(query, depth))
        named = self.named_files(query)
        if named:  # the question names its document: its passages first, the hybrid's ranked whole
            inside = self.within(query, vector, named) if mode == "hybrid" and vector is not None else None
            similar.update(dict(inside[1] if inside else ()))
            ranked = named_first(ranked, self.files_of([i for i, _ in ranked]), named, inside and inside[0])
        if threshold > 0:
            # Similar enough in meaning, or holding every word of the query (a name embeds
            # poorly but matches exactly), as the local library does.
            exact = self.holding_every_word(query, [i for i, _ in ranked if similar.get(i, -1.0) < threshold])
            ranked = [(i, s) for i, s in ranked if similar.get(i, -1.0) >= threshold or i in exact]
        return self.passages(ranked[:k])

    def named_files(self, query: str) -> set[int]:
        """The files an identifier in ``query`` names (:func:`archivist.identifiers`): for
        each, the files whose name or header holds it, kept when they are at most
        :data:`archivist.MAX_NAMED_FILES`."""
        named: set[int] = set()
        for word in identifiers(query):
            with self._lock:
                # (a phrase: "pa-22-150" is the words pa, 22 and 150 in a row, as FTS5 reads it)
                rows = self.conn.execute(
                    "SELECT id FROM archivist_files WHERE collection = %s "
                    "AND meta_tsv @@ phraseto_tsquery('simple', %s) ORDER BY id LIMIT %s",
                    (self.collection, word, MAX_NAMED_FILES + 1)).fetchall()
            if len(rows) <= MAX_NAMED_FILES:
                named |= {int(r[0]) for r in rows}
        return named

    def within(self, query: str, vector: Any, named: set[int]
               ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]] | None:
        """The hybrid ranking of every passage of the ``named`` files, and its dense side;
        None when they hold more than :data:`WITHIN_MAX_PASSAGES`. As the local library
        does (``archivist_faiss.search.Search.within``): every passage has its own cosine
        (the collection-wide first 50 may hold few of a long report's), and the keyword
        side leaves out the question's words found in the files' header
        (:func:`archivist.content_query`), which chose the files and inside them would
        choose the title page."""
        files = sorted(named)
        with self._lock:
            count = self.conn.execute("SELECT count(*) FROM archivist_passages WHERE collection = %s "
                                      "AND file_id = ANY(%s)", (self.collection, files)).fetchone()[0]
            if not count or count > WITHIN_MAX_PASSAGES:
                return None
            rows = self.conn.execute(
                "SELECT id, 1 - (embedding <=> %s) FROM archivist_passages WHERE collection = %s "
                "AND file_id = ANY(%s)", (vector, self.collection, files)).fetchall()
            heads = [str(m) for (m,) in self.conn.execute(
                "SELECT meta FROM archivist_files WHERE collection = %s AND id = ANY(%s)",
                (self.collection, files)).fetchall()]
        dense = sorted(((int(i), float(c)) for i, c in rows), key=lambda r: (-r[1], r[0]))
        keyword = self.keyword(content_query(query, " ".join(heads)), max(50, int(count)), files=files)
        return fuse(dense, keyword), dense

    def files_of(self, ids: Sequence[int]) -> dict[int, int]:
        """Passage id -> file id, for ``ids``."""
        if not ids:
            return {}
        with self._lock:
            rows = self.conn.execute("SELECT id, file_id FROM archivist_passages WHERE id = ANY(%s) "
                                     "AND collection = %s", (list(ids), self.collection)).fetchall()
        return {int(i): int(f) for i, f in rows}

    def passages(self, ranked: list[tuple[int, float]]) -> list[Passage]:
        if not ranked:
            return []
        with self._lock:
            rows = {r[0]: r for r in self.conn.execute(
                "SELECT p.id, p.text, f.path, p.page, p.section, p.start_offset, p.end_offset, f.title "
                "FROM archivist_passages p JOIN archivist_files f ON p.file_id = f.id WHERE p.id = ANY(%s)",
                ([i for i, _ in ranked],)).fetchall()}
        out = []
        for i, score in ranked:
            if i in rows:  # (a file rewritten since the ranking was made is left out)
                _, text, path, page, section, start, end, title = rows[i]
                out.append(Passage(text, path, Locator(page, section, start, end), round(score, 6), title,
                                   f"{self.collection}:{i}"))
        return out


def _files_under(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _part_progress(progress: Callable[[SyncProgress], None], key: str, done: int, total: int,
                   path: str) -> Callable[[int, int], None]:
    def report(part_done: int, part_total: int) -> None:
        progress(SyncProgress(key, done, total, path, part_done, part_total))

    return report
