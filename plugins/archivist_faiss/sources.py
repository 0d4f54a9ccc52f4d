"""The folders and files the user added, and the files known under each.

A source is keyed by its absolute path. Adding one only records it (indexing is a
sync); removing one deletes every file indexed from it through :class:`Records`, so the
vectors follow. What a source holds, for people, is read by :mod:`catalog` instead:
that needs no SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from archivist import ArchivistError
from archivist_faiss.records import Records
from archivist_faiss.store import File, Source, now
from archivist_faiss.vector_cache import VectorCache


def source_key(path: Path | str) -> str:
    """The key of a source: its absolute path with links resolved."""
    return str(Path(path).expanduser().resolve())


class Sources:
    def __init__(self, session_factory: Any, records: Records, cache: VectorCache) -> None:
        self.Session = session_factory
        self.records = records
        self.cache = cache

    def add(self, path: Path | str) -> str:
        key = source_key(path)
        if not Path(key).exists():
            raise ArchivistError(f"{key} does not exist")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ArchivistError(f"{key.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')}: "
                                 "its name is not valid UTF-8; add the folder it is in, or rename it") from None
        with self.Session.begin() as s:  # two processes may add it at once: the second changes nothing
            s.execute(sqlite_insert(Source).values(path=key, added_at=now()).on_conflict_do_nothing())
        return key

    def remove(self, path: Path | str) -> int:
        """Forget a source and everything indexed from it; the files removed."""
        key = source_key(path)
        with self.Session() as s:
            src = s.scalar(select(Source).where(Source.path == key))
            if src is None:
                raise ArchivistError(f"{key} is not a source")
            file_ids = list(s.scalars(select(File.id).where(File.source_id == src.id)))
        if self.cache.passage_count():
            self.cache.ensure()
        removed = self.records.delete_files(file_ids)
        with self.Session.begin() as s:
            s.execute(delete(Source).where(Source.path == key))
        self.cache.save()
        return removed

    def ids(self) -> dict[str, int]:
        """Each source's key and row id."""
        with self.Session() as s:
            return {src.path: src.id for src in s.scalars(select(Source))}

    def owner(self, path: Path, ids: dict[str, int]) -> int | None:
        """The id of the source ``path`` lies in (or is), if any."""
        return next((sid for root, sid in ids.items() if path == Path(root) or Path(root) in path.parents), None)

    def known_files(self, source_id: int) -> dict[str, File]:
        with self.Session() as s:
            return {f.path: f for f in s.scalars(select(File).where(File.source_id == source_id))}

    def file(self, key: str) -> File | None:
        """The file stored under ``key`` (its path as :func:`~archivist_faiss.ingestion.path_key` writes it)."""
        with self.Session() as s:
            found: File | None = s.scalar(select(File).where(File.path == key))
            return found

    def files(self) -> list[dict[str, Any]]:
        """Every file known, indexed or skipped, with its state (for tests and benchmarks)."""
        with self.Session() as s:
            return [{"path": f.path, "status": f.status, "reason": f.reason, "title": f.title,
                     "parts": f.parts} for f in s.scalars(select(File).order_by(File.path))]
