"""What the index holds, read with the standard library: sources, skipped files, passages.

The window asks at start-up whether there are sources, and the assistant asks before
every question how many passages there are. Answering through the index itself would
import SQLAlchemy and open the database with its migrations (and searching would load
FAISS and the encoder), so these reads open ``index.db`` read-only with :mod:`sqlite3`.
Each query takes a DB-API connection, so the open index can run the same SQL on its own
connection when the read-only one cannot be had (:func:`read` answers None then).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from archivist import LibrarySource, SkippedFile
from archivist_faiss import integrity

DATABASE = "index.db"

T = TypeVar("T")


def database_path(home: Path) -> Path:
    """``<home>/plugins/faiss/index.db`` (not created here)."""
    return Path(home) / "plugins" / "faiss" / DATABASE


def read(database: Path, query: Callable[[Any], T], empty: T) -> T | None:
    """``query`` on a read-only connection to ``database``; ``empty`` when there is no
    database yet; None when it cannot be read this way (the caller asks the index).
    Raises :class:`~archivist_faiss.integrity.IndexDamaged` when it is damaged."""
    if not database.exists():
        return empty
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1.0) as conn:
            return query(conn)
    except sqlite3.Error as exc:
        if integrity.is_damage(exc):  # not worth opening for writing: say what to run
            raise integrity.damaged(database) from exc
        return None


def sources(conn: Any) -> list[LibrarySource]:
    rows = conn.execute(
        "SELECT s.path, s.added_at,"
        " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status IN ('indexed', 'embedding')),"
        " (SELECT count(*) FROM files f WHERE f.source_id = s.id AND f.status IN ('skipped', 'failed')),"
        " (SELECT count(*) FROM chunks c JOIN files f ON c.file_id = f.id WHERE f.source_id = s.id)"
        " FROM sources s ORDER BY s.path"
    ).fetchall()
    return [LibrarySource(path, added_at or "", int(files), int(skipped), int(passages), not on_disk(path))
            for path, added_at, files, skipped, passages in rows]


def on_disk(key: str) -> bool:
    """Whether the source or file stored under ``key`` is still there: one ``stat``. A
    name that is not UTF-8 is stored with its odd bytes spelled ``\\xe9``
    (:func:`~archivist_faiss.ingestion.path_key`): such a key is spelled back."""
    if os.path.exists(key):
        return True
    if "\\x" not in key:
        return False
    raw = _ESCAPED_BYTE.sub(lambda m: chr(int(m.group(1), 16) + 0xDC00), key)
    return os.path.exists(raw)


_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def skipped(conn: Any) -> list[SkippedFile]:
    rows = conn.execute("SELECT path, reason FROM files WHERE status IN ('skipped', 'failed') ORDER BY path"
                        ).fetchall()
    return [SkippedFile(path, reason or "skipped") for path, reason in rows]


def count(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
