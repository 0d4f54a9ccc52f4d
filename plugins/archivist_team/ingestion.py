"""Indexing one file: read, hash, chunk and embed it (:func:`prepare`), then write it (:func:`write`).

The two halves are apart so that the first can run anywhere (in this process, or in a
Ray worker, :mod:`archivist_team.spread`) and only the second touches the database.
Each passage is keyword-indexed with its text and the words its file is searched by
(:func:`archivist.passage_meta`: name, title, folders, dates and the document's header),
as the local library indexes it; the file keeps that header in ``meta`` too, where the
identifiers a question names a document by are looked up (schema version 3). A
file's passages are written in one transaction, under an advisory lock on the file: a
reader sees the file as it was or as it is now, never half of it, and two machines
indexing the same file one after the other leave one copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archivist import Locator, holds_lead, passage_meta
from archivist_team.chunking import Chunk


@dataclass
class Prepared:
    """A file ready to write: its passages and their vectors (float32 rows, unit length);
    ``meta`` the words the file is searched by, ``metas`` those of each passage (the
    same, less the first page's start for the passages that hold it)."""

    path: str
    sha256: str
    title: str | None
    pages: int
    chunks: list[Chunk]
    vectors: Any = field(repr=False)
    meta: str = ""
    metas: list[str] = field(default_factory=list, repr=False)


@dataclass
class NotIndexed:
    """A file left out, with the reason in words."""

    path: str
    sha256: str
    reason: str


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pick_loader(path: Path, loaders: Sequence[Any]) -> Any | None:
    """The loader for ``path``'s extension (a later one replaces an earlier one)."""
    suffix = path.suffix.lower()
    found = None
    for loader in loaders:
        if suffix in tuple(e.lower() for e in getattr(loader, "extensions", ())):
            found = loader
    return found


def prepare(path: Path, sha256: str, loaders: Sequence[Any], encoder: Any,
            progress: Callable[[int, int], None] | None = None) -> Prepared | NotIndexed:
    """Read ``path`` with its loader, chunk and embed it; a file that cannot be read is a
    :class:`NotIndexed` with the reason, never an exception."""
    loader = pick_loader(path, loaders)
    if loader is None:
        return NotIndexed(str(path), sha256, f"unsupported file type '{path.suffix.lower() or path.name}'")
    try:
        doc = loader.load(path)
    except Exception as exc:  # noqa: BLE001 - a loader's failure is the file's reason, not ours
        return NotIndexed(str(path), sha256, str(getattr(exc, "reason", "") or exc) or type(exc).__name__)
    chunks = [c for c in encoder.chunker.chunk(doc) if c.text.strip()]
    if not chunks:
        return NotIndexed(str(path), sha256, "no text found in it")
    vectors = encoder.embedder.embed([c.text for c in chunks], progress)
    pages = len({p.locator.page for p in doc.parts if p.locator.page is not None})
    mtime = path.stat().st_mtime
    meta = passage_meta(path, doc, mtime)
    without_lead = passage_meta(path, doc, mtime, first_page=False)
    metas = [without_lead if holds_lead(doc, c.locator) else meta for c in chunks]
    return Prepared(str(path), sha256, doc.title, pages, chunks, vectors, meta, metas)


def _lock(conn: Any, collection: str, path: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{collection}/{path}",))


def write(conn: Any, collection: str, source: str, item: Prepared | NotIndexed) -> None:
    """Replace what ``collection`` holds of the file with ``item``, in one transaction."""
    with conn.transaction():
        _lock(conn, collection, item.path)
        conn.execute("DELETE FROM archivist_files WHERE collection = %s AND path = %s", (collection, item.path))
        conn.execute("DELETE FROM archivist_skipped WHERE collection = %s AND path = %s", (collection, item.path))
        if isinstance(item, NotIndexed):
            conn.execute("INSERT INTO archivist_skipped (collection, source, path, sha256, reason) "
                         "VALUES (%s, %s, %s, %s, %s)", (collection, source, item.path, item.sha256, item.reason))
            return
        file_id = conn.execute(
            "INSERT INTO archivist_files (collection, source, path, sha256, title, pages, meta) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (collection, source, item.path, item.sha256, item.title, item.pages, _clean(item.meta))).fetchone()[0]
        metas = item.metas or [item.meta] * len(item.chunks)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO archivist_passages (collection, file_id, ordinal, page, section, start_offset, "
                "end_offset, text, tsv, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "to_tsvector('simple', %s) || to_tsvector('simple', %s), %s)",
                [(collection, file_id, c.ordinal, c.locator.page, c.locator.section, c.locator.start,
                  c.locator.end, _clean(c.text), _clean(c.text), _clean(meta), vec)
                 for c, meta, vec in zip(item.chunks, metas, item.vectors)])


def _clean(text: str) -> str:
    """``text`` as PostgreSQL stores it: without NUL characters, which it refuses."""
    return text.replace("\x00", "")


def add_headers(conn: Any, collection: str, path: Path, loaders: Sequence[Any]) -> None:
    """Give a file indexed before schema version 3, unchanged since, what version 3 indexes
    with its passages: its header (``meta``) and passage keyword vectors made from text and
    header. The file is read again but not embedded again: its passages and vectors stay.
    A file that cannot be read now gets the header of its name, folders and date alone (so
    the next sync does not try again); it was read when it was indexed."""
    loader = pick_loader(path, loaders)
    doc = None
    if loader is not None:
        try:
            doc = loader.load(path)
        except Exception:  # noqa: BLE001 - its passages stay as they are, found by their text
            doc = None
    mtime = path.stat().st_mtime
    meta = _clean(passage_meta(path, doc, mtime))
    without_lead = _clean(passage_meta(path, doc, mtime, first_page=False))
    with conn.transaction():
        _lock(conn, collection, str(path))
        row = conn.execute("UPDATE archivist_files SET meta = %s WHERE collection = %s AND path = %s RETURNING id",
                           (meta, collection, str(path))).fetchone()
        if row is None:
            return
        passages = conn.execute("SELECT id, page, start_offset, end_offset FROM archivist_passages "
                                "WHERE file_id = %s", (row[0],)).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE archivist_passages SET tsv = to_tsvector('simple', text) || to_tsvector('simple', %s) "
                "WHERE id = %s",
                [(without_lead if holds_lead(doc, Locator(page, None, start, end)) else meta, i)
                 for i, page, start, end in passages])


def forget(conn: Any, collection: str, path: str) -> None:
    """Remove a file that is gone from the disk (its passages go with it)."""
    with conn.transaction():
        _lock(conn, collection, path)
        conn.execute("DELETE FROM archivist_files WHERE collection = %s AND path = %s", (collection, path))
        conn.execute("DELETE FROM archivist_skipped WHERE collection = %s AND path = %s", (collection, path))
