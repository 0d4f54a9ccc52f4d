"""A damaged archivist.db is one line naming the file and `archivist doctor --repair`."""

from __future__ import annotations

from pathlib import Path

import pytest

from archivist.config import Paths, peek_setting
from archivist.errors import ArchivistError
from archivist.store.database import open_database
from archivist.store.settings import Settings


def _filled(path: Path) -> None:
    db = open_database(path)
    try:
        settings = Settings(db)
        for n in range(400):
            settings.set(f"key-{n}", "value " * 50)
    finally:
        db.close()


def test_a_file_that_is_not_a_database_is_one_line_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    path.write_bytes(b"this is no database, it is a shopping list\n" * 200)
    with pytest.raises(ArchivistError, match=r"archivist\.db is damaged: run `archivist doctor --repair`"):
        open_database(path)


def test_a_truncated_database_is_one_line_when_it_is_read(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    _filled(paths.database)
    with open(paths.database, "r+b") as fh:
        fh.truncate(paths.database.stat().st_size // 2)
    with pytest.raises(ArchivistError, match="doctor --repair"):
        peek_setting(paths, "key-1")  # the first question's fast path does not answer with a default
    with pytest.raises(ArchivistError, match="doctor --repair") as caught:
        db = open_database(paths.database)
        try:
            Settings(db).all()
        finally:
            db.close()
    assert "DatabaseError" not in str(caught.value)
