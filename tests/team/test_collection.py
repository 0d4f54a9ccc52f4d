"""A PostgreSQL collection on a real server: the library contract every library passes,
search with citations, idempotent indexing, one transaction per file, the schema version."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archivist import ArchivistError
from archivist.testing import LibraryContract
from archivist_team import schema
from archivist_team.collection import TeamCollection


class TestTeamCollection(LibraryContract):
    @pytest.fixture()
    def library(self, make_collection):
        return make_collection()


def test_search_finds_the_passage_with_its_citation(make_collection, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text(
        "Ships once ran aground on the reef.\n\nThe lighthouse on Gull Point was built in 1871 "
        "from granite quarried on the island.\n", encoding="utf-8")
    (folder / "bakery.txt").write_text("The bakery on Mill Street sells rye bread on Saturdays.\n",
                                       encoding="utf-8")
    collection = make_collection()
    collection.sync([collection.add_source(folder)])
    [best, *_] = collection.search("When was the lighthouse built?", 3)
    assert best.path == str((folder / "lighthouse.txt").resolve())
    text = (folder / "lighthouse.txt").read_text(encoding="utf-8")
    assert "1871" in best.text and text[best.locator.start:best.locator.end] == best.text
    keyword = collection.search("granite", 3, mode="keyword")
    assert keyword and "granite" in keyword[0].text
    assert collection.search("What is the airspeed of a swallow carrying a coconut?", 3) == []


def test_indexing_again_is_idempotent_by_content(make_collection, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    note = folder / "note.txt"
    note.write_text("The tide tables for March are pinned by the harbour office door.\n", encoding="utf-8")
    collection = make_collection()
    key = collection.add_source(folder)
    first = collection.sync([key])
    ids = collection.conn.execute("SELECT id FROM archivist_passages").fetchall()
    note.touch()  # a new modification time, the same content: nothing to do
    again = collection.sync([key])
    assert first.indexed == [str(note.resolve())] and again.indexed == [] and again.unchanged == 1
    assert collection.conn.execute("SELECT id FROM archivist_passages").fetchall() == ids


def test_readers_never_see_half_a_file(make_collection, tmp_path: Path) -> None:
    """A file's passages are replaced in one transaction: a reader counting them while the
    file is rewritten sees the old count or the new one, nothing between."""
    folder = tmp_path / "docs"
    folder.mkdir()
    book = folder / "book.txt"
    book.write_text("\n\n".join(f"Chapter {i}. " + "The ferry leaves at dawn. " * 40 for i in range(30)),
                    encoding="utf-8")
    collection = make_collection()
    key = collection.add_source(folder)
    collection.sync([key])
    old = collection.count()
    reader = TeamCollection(collection.collection, collection.url, collection.password, encoder=collection.encoder)
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(reader.count())

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        book.write_text("\n\n".join(f"Part {i}. " + "The ferry leaves at noon. " * 40 for i in range(60)),
                        encoding="utf-8")
        collection.sync([key])
    finally:
        stop.set()
        thread.join()
        reader.close()
    new = collection.count()
    assert new != old and seen <= {old, new}


def test_a_newer_schema_is_refused_with_both_versions(make_collection, pg_server, pg_database) -> None:
    collection = make_collection()
    assert collection.count() == 0
    with pg_server.admin(pg_database) as admin:
        admin.execute("UPDATE archivist_schema SET version = %s", (schema.VERSION + 1,))
    collection.close()
    with pytest.raises(ArchivistError, match=rf"schema is version {schema.VERSION + 1}, this Archivist knows "
                                             rf"version {schema.VERSION}"):
        collection.count()


def test_a_database_without_the_tables_says_how_to_create_them(pg_server, pg_database, team_encoder) -> None:
    collection = TeamCollection("docs", pg_server.url(database=pg_database), None, encoder=team_encoder)
    with pytest.raises(ArchivistError, match="collections add NAME URL --create"):
        collection.count()
