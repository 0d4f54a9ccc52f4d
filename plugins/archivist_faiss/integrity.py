"""Damage to the index's files: found for ``archivist doctor``, repaired by ``doctor --repair``.

``index.db`` holds everything indexed (sources, files, passages with their embeddings,
the FTS5 keywords); ``vectors.faiss`` is a cache made from it. Damage to ``index.db`` is
found by SQLite's own checks and two of ours:

- ``PRAGMA integrity_check`` reads every page: a truncated file, an overwritten page, an
  index that disagrees with its table;
- FTS5's ``integrity-check``: the keyword index against the passages it was made from;
- every embedding must be :data:`DIMENSIONS` finite floats of unit length (or empty, in
  a file whose state is "embedding": its vectors are still to come), and every
  passage's text must equal its keyword row's. SQLite keeps no checksum of a row, so
  bytes changed inside one (random bytes over the middle of the file) pass its checks
  but not these.

Commands meet damage as SQLite's "database disk image is malformed"; the library and the
retriever turn that into one :class:`IndexDamaged` line saying to run ``archivist doctor
--repair`` (:func:`reports_damage`). Repairing moves the damaged database aside
(``index.db.damaged-DATE``, nothing in it deleted), deletes the vectors cache and starts
a new, empty index; the lines it returns list the sources to index again.

Imports nothing heavy at module level: :mod:`catalog` uses :func:`is_damage` on its
start-up reads.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from archivist import ArchivistError

DIMENSIONS = 384  # the encoder's (index.DIMENSIONS), without importing the index
VECTORS = ("vectors.faiss", "vectors.json")  # the cache and its stamp (vectors.VectorIndex)
DAMAGED_MARK = ".damaged-"  # NAME.damaged-DATE, as the core names what it moves aside
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
TABLES = ("sources", "files", "chunks", "chunks_fts", "meta")

F = TypeVar("F", bound=Callable[..., Any])


class IndexDamaged(ArchivistError):
    """The index's database is damaged; the message says where and what to run."""


def damaged(database: Path) -> IndexDamaged:
    return IndexDamaged(f"the document index at {database} is damaged: run `archivist doctor --repair`")


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` (sqlite3's, or SQLAlchemy's wrapping it) says the file is damaged
    ("database disk image is malformed", "file is not a database"); a locked file is not."""
    inner = getattr(exc, "orig", None) or exc
    code = getattr(inner, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    text = str(inner)
    return isinstance(inner, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text)


@contextmanager
def reported(database: Path) -> Iterator[None]:
    """Turn SQLite's word for damage, raised inside, into :func:`damaged`'s line."""
    try:
        yield
    except IndexDamaged:
        raise
    except Exception as exc:
        if is_damage(exc):
            raise damaged(database) from exc
        raise


def reports_damage(method: F) -> F:
    """:func:`reported` around a method of an object with a ``home`` (the library's, the retriever's)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with reported(Path(self.home) / "plugins" / "faiss" / "index.db"):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- finding ------------------------------------------------------------------------------


def find_damage(database: Path) -> str:
    """Why ``database`` is damaged, in a phrase ("" when it is sound or absent). Changes nothing."""
    if not database.is_file() or database.stat().st_size == 0:
        return ""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)) as conn:
            rows = conn.execute("PRAGMA integrity_check(3)").fetchall()
            if rows != [("ok",)]:
                return _phrase(rows[0][0] if rows else "integrity_check failed")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables & set(TABLES):
                return ""  # an empty database: the index makes its tables when it opens
            missing = [t for t in TABLES if t not in tables]
            if missing:
                return f"its table {missing[0]} is missing"
            return _meta_damage(conn) or _embedding_damage(conn) or _text_damage(conn) or _keyword_damage(database)
    except sqlite3.Error as exc:
        if is_damage(exc):
            return _phrase(str(exc))
        raise ArchivistError(f"could not check the document index at {database}: {exc}") from exc


def _phrase(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _meta_damage(conn: sqlite3.Connection) -> str:
    for key in ("generation", "schema_version"):
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None and not str(row[0]).isdigit():
            return f"its {key} is not a number"
    return ""


def _embedding_damage(conn: sqlite3.Connection, batch: int = 20_000) -> str:
    import numpy as np

    size = DIMENSIONS * 4
    row = conn.execute("SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id "
                       "WHERE length(c.embedding) = 0 AND f.status != 'embedding' LIMIT 1").fetchone()
    if row is not None:
        return f"the embedding of passage {row[0]} is missing"
    last = 0
    while True:
        rows = conn.execute("SELECT id, embedding FROM chunks WHERE id > ? ORDER BY id LIMIT ?",
                            (last, batch)).fetchall()
        if not rows:
            return ""
        last = rows[-1][0]
        rows = [(i, e) for i, e in rows if e != b""]  # a passage still being embedded (checked above)
        if not rows:
            continue
        wrong = next((i for i, e in rows if not isinstance(e, bytes) or len(e) != size), None)
        if wrong is not None:
            return f"the embedding of passage {wrong} is not {DIMENSIONS} numbers"
        vecs = np.frombuffer(b"".join(e for _, e in rows), dtype=np.float32).reshape(len(rows), DIMENSIONS)
        with np.errstate(all="ignore"):
            norms = np.einsum("ij,ij->i", vecs.astype(np.float64), vecs.astype(np.float64))
        bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > 1e-3)
        if bad.any():
            return f"the embedding of passage {rows[int(np.argmax(bad))][0]} was altered (it is not of unit length)"


def _text_damage(conn: sqlite3.Connection) -> str:
    row = conn.execute(
        "SELECT c.id FROM chunks c WHERE NOT EXISTS "
        "(SELECT 1 FROM chunks_fts f WHERE f.rowid = c.id AND f.text = c.text) LIMIT 1").fetchone()
    return "" if row is None else f"the text of passage {row[0]} differs from its keyword row"


def _keyword_damage(database: Path) -> str:
    """FTS5's own check. It is an INSERT, so it runs on a writable connection, inside a
    transaction that is rolled back: nothing is written."""
    with closing(sqlite3.connect(database, timeout=5.0, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        try:
            conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                return "the keyword index does not match the passages"
            raise
        finally:
            conn.execute("ROLLBACK")
    return ""


def vectors_damage(folder: Path, database: Path) -> str:
    """Why the vectors cache in ``folder`` differs from ``database``'s embeddings ("" when
    it matches, or when it is stale or unreadable: a search rebuilds those by itself)."""
    faiss_file, stamp_file = (folder / name for name in VECTORS)
    try:
        stamp = json.loads(stamp_file.read_text("utf-8"))
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)) as conn:
            generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            if not isinstance(stamp, dict) or generation is None or str(stamp.get("generation")) != str(generation[0]):
                return ""
            import faiss
            import numpy as np

            index = faiss.read_index(str(faiss_file))
            if not isinstance(index, faiss.IndexIDMap2):
                return ""  # an IVF index: compared by search only (bench/retrieval.py)
            flat: Any = faiss.downcast_index(index.index)  # an IndexFlat: it has get_xb()
            n = int(index.ntotal)
            ids = faiss.vector_to_array(index.id_map)
            stored = np.asarray(faiss.rev_swig_ptr(flat.get_xb(), n * index.d)).reshape(n, index.d) if n else None
            position = {int(i): p for p, i in enumerate(ids)}
            for chunk_id, embedding in conn.execute("SELECT id, embedding FROM chunks WHERE length(embedding) > 0"):
                p = position.get(int(chunk_id))
                if p is None:
                    return ""  # not the same passages: a search rebuilds it
                assert stored is not None
                if not np.array_equal(stored[p], np.frombuffer(embedding, dtype=np.float32)):
                    return f"its vector for passage {chunk_id} differs from the index's"
    except (OSError, ValueError, RuntimeError, sqlite3.Error):
        return ""
    return ""


def check(database: Path) -> list[str]:
    """The problems of the index at ``database`` (and its vectors cache), one line each."""
    why = find_damage(database)
    if why:
        sources = readable_sources(database)
        then = (f"its {len(sources)} source{'s' if len(sources) != 1 else ''} ({_listed(sources)}) must then be "
                "indexed again" if sources else "your folders must then be indexed again")
        return [f"the document index at {database} is damaged ({why}): --repair moves it aside, to "
                f"{database.name}{DAMAGED_MARK}DATE, and starts a new, empty index; {then}"]
    stale = vectors_damage(database.parent, database)
    if stale:
        return [f"the vectors file {database.parent / VECTORS[0]} is damaged ({stale}): --repair deletes it, "
                "a cache that the next search makes again from the index"]
    return []


def _listed(sources: list[str], shown: int = 3) -> str:
    more = len(sources) - shown
    return ", ".join(sources[:shown]) + (f" and {more} more" if more > 0 else "")


def readable_sources(database: Path) -> list[str]:
    """The source paths a damaged database still gives up ([] when it gives none).

    ``writable_schema`` lets SQLite read a file shorter than its header says (truncated),
    which it otherwise refuses whole; the connection is read-only all the same."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)) as conn:
            conn.execute("PRAGMA writable_schema = ON")
            return [str(r[0]) for r in conn.execute("SELECT path FROM sources ORDER BY path")]
    except sqlite3.Error:
        return []


# -- repairing ----------------------------------------------------------------------------


def repair(database: Path) -> list[str]:
    """Repair what :func:`check` finds; what was done, one line each. The caller closes
    its own connections to the index first."""
    why = find_damage(database)
    if not why:
        if vectors_damage(database.parent, database):
            return _delete_vectors(database.parent)
        return []
    sources = readable_sources(database)
    aside = _move_aside(database)
    lines = [f"moved the damaged document index {database} to {aside} (nothing in it was deleted)"]
    lines += _delete_vectors(database.parent)
    from archivist_faiss.store import open_engine

    open_engine(database).dispose()
    lines.append(f"started a new, empty document index at {database}")
    if sources:
        lines.append(f"index your {len(sources)} source{'s' if len(sources) != 1 else ''} again: archivist index "
                     + " ".join(shlex.quote(s) for s in sources))
    else:
        lines.append("the damaged index's list of sources could not be read: index your folders again with "
                     "`archivist index PATH`")
    return lines


def _delete_vectors(folder: Path) -> list[str]:
    removed = [folder / name for name in VECTORS if (folder / name).exists()]
    for path in removed:
        path.unlink()
    if not removed:
        return []
    return [f"deleted the vectors file {folder / VECTORS[0]}: a cache, made again from the index on the next search"]


def _move_aside(path: Path) -> Path:
    """``path`` (with its -wal and -shm, so the copy opens as it was) to ``NAME.damaged-DATE``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm", "-journal"):
        sibling = path.with_name(path.name + suffix)
        if sibling.exists():
            os.replace(sibling, aside.with_name(aside.name + suffix))
    return aside
