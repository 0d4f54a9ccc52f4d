"""Readers and writers of a collection, on a real server, and what each front end makes of it.

The administrator creates collection ``handbook`` whose members are those of a readers'
role, of whom only the members of a writers' role may change it (``--writer``, schema
version 2). ``ed`` is a writer, ``ann`` a reader: the server refuses her writes (row-level
security, table privileges), the collection says she may only read it
(``archivist.Writable``), and so do the core's library service, ``archivist index`` and
the window's Library page. Choosing which collections answer is tested here on the same
collection; tests/core/test_collection_choice.py tests it on doubles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from archivist import PluginContext, Writable
from archivist_team import schema
from archivist_team.collection import TeamCollection
from archivist_team.commands import add_collection
from archivist_team.ingestion import file_hash

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # (for the Library page's test)

QUESTION = "How many days of paid leave does an employee get?"


@dataclass
class Team:
    reader: str
    writer: str
    folder: Path
    database: str


@pytest.fixture()
def handbook(pg_server, pg_database, unique, tmp_path: Path) -> Team:
    from archivist_team.connection import connect

    readers, writers = unique("handbook_readers"), unique("handbook_writers")
    admin = connect(pg_server.url(database=pg_database), None)
    try:
        schema.create_collection(admin, "handbook", readers, writers)
    finally:
        admin.close()
    ann, ed = unique("ann"), unique("ed")
    pg_server.new_user(ann, f"{ann}-pw", readers)
    pg_server.new_user(ed, f"{ed}-pw", writers)
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.txt").write_text("Every employee gets 27 days of paid leave a year, plus public holidays.\n",
                                      encoding="utf-8")
    return Team(ann, ed, folder, pg_database)


def indexed_by_the_writer(handbook: Team, open_as) -> TeamCollection:
    writer = open_as(handbook.writer, handbook.database)
    assert isinstance(writer, Writable) and writer.read_only() == ""
    report = writer.sync([writer.add_source(handbook.folder)])
    assert report.indexed == [str((handbook.folder / "leave.txt").resolve())]
    return writer


def test_a_reader_searches_but_the_server_refuses_her_writes(handbook: Team, open_as, pg_server,
                                                              tmp_path: Path) -> None:
    writer = indexed_by_the_writer(handbook, open_as)
    reader = open_as(handbook.reader, handbook.database)
    assert reader.read_only() == f"shared collection handbook: read-only for {handbook.reader}"
    assert reader.count() == writer.count() > 0
    [best, *_] = reader.search(QUESTION, 3)
    assert "27 days" in best.text
    other = tmp_path / "mine"
    other.mkdir()
    with pytest.raises(Exception, match="permission denied"):  # her role may only SELECT
        reader.add_source(other)
    # Given the tables' privileges (as a writer of another collection has them), she is
    # still refused by the row-level security policies, and still told she may only read.
    with pg_server.admin(handbook.database) as admin:
        admin.execute(f"GRANT INSERT, UPDATE, DELETE ON archivist_sources, archivist_files, archivist_skipped, "
                      f"archivist_passages TO {handbook.reader}")
    assert reader.read_only() == f"shared collection handbook: read-only for {handbook.reader}"
    with pytest.raises(Exception, match="row-level security"):
        reader.add_source(other)
    assert reader.conn.execute("DELETE FROM archivist_passages WHERE collection = 'handbook'").rowcount == 0
    assert writer.count() > 0
    # A member of another collection only is told that, not that this one is read-only.
    from archivist_team.connection import connect

    admin = connect(pg_server.url(database=handbook.database), None)
    try:
        schema.create_collection(admin, "elsewhere", f"elsewhere_{handbook.reader}")
    finally:
        admin.close()
    pg_server.new_user("stranger_" + handbook.reader, f"stranger_{handbook.reader}-pw", f"elsewhere_{handbook.reader}")
    stranger = open_as("stranger_" + handbook.reader, handbook.database)
    assert stranger.read_only() == f"shared collection handbook: stranger_{handbook.reader} is not a member of its role"


def test_a_version_1_database_is_upgraded_and_its_members_still_write(pg_server, pg_database, unique, open_as,
                                                                        tmp_path: Path) -> None:
    from psycopg import sql

    from archivist_team.connection import connect

    role, user = unique("old_team"), unique("olga")
    admin = connect(pg_server.url(database=pg_database), None)
    try:
        assert schema.install(admin, version=1)
        # What collections add --create did in version 1.
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT SELECT ON archivist_collections TO {}").format(sql.Identifier(role)))
        for table in ("archivist_sources", "archivist_files", "archivist_skipped", "archivist_passages"):
            admin.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                sql.Identifier(table), sql.Identifier(role)))
        for sequence in ("archivist_files_id_seq", "archivist_passages_id_seq"):
            admin.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(sequence),
                                                                              sql.Identifier(role)))
        admin.execute("INSERT INTO archivist_collections (name, role) VALUES ('old', %s)", (role,))
        pg_server.new_user(user, f"{user}-pw", role)
        member = open_as(user, pg_database, "old")
        # A file indexed in version 1: its passage's tsv generated from its text alone.
        folder = (tmp_path / "old").resolve()
        folder.mkdir()
        old = folder / "gull_point.txt"
        old.write_text("The lighthouse was built of granite.\n", encoding="utf-8")
        admin.execute("INSERT INTO archivist_sources (collection, path) VALUES ('old', %s)", (str(folder),))
        file_id = admin.execute("INSERT INTO archivist_files (collection, source, path, sha256) "
                                "VALUES ('old', %s, %s, %s) RETURNING id",
                                (str(folder), str(old), file_hash(old))).fetchone()[0]
        admin.execute("INSERT INTO archivist_passages (collection, file_id, ordinal, start_offset, end_offset, "
                      "text, embedding) VALUES ('old', %s, 0, 0, 36, 'The lighthouse was built of granite.', %s)",
                      (file_id, "[" + ",".join(["1"] + ["0"] * (schema.DIM - 1)) + "]"))
        with pytest.raises(schema.SchemaMismatch, match=f"version 1, this Archivist knows version {schema.VERSION}: "
                                                        "run `archivist collections upgrade NAME`"):
            member.count()
        assert schema.upgrade(admin) == schema.VERSION == 3
    finally:
        admin.close()
    member.close()
    assert member.read_only() == ""  # no writer role named: every member writes, as before
    assert [p.text for p in member.search("granite", 1, mode="keyword")] == ["The lighthouse was built of granite."]
    assert member.search("gull", 1, mode="keyword") == []  # no header yet: "gull" is only in the file's name
    (folder / "note.txt").write_text("The old wiki moved to the intranet in 2019.\n", encoding="utf-8")
    report = member.sync([str(folder)])
    assert report.indexed == [str(folder / "note.txt")] and report.unchanged == 1
    # The new file and the old one, unchanged and not embedded again, are found by their names too.
    assert member.search("note", 1, mode="keyword")[0].path == str(folder / "note.txt")
    assert [p.path for p in member.search("gull", 1, mode="keyword")] == [str(old)]
    assert member.conn.execute("SELECT count(*) FROM archivist_passages WHERE file_id = %s",
                               (file_id,)).fetchone()[0] == 1


def test_the_library_service_and_the_command_line_refuse_a_reader_with_the_reason(
        handbook: Team, open_as, pg_server, team_home: Path, keyring_file: Path, team_cli) -> None:
    from archivist.application import Application
    from archivist.library import ReadOnlyLibrary

    indexed_by_the_writer(handbook, open_as)
    reason = f"shared collection handbook: read-only for {handbook.reader}"
    add_collection(PluginContext(home=team_home), "handbook",
                   pg_server.url(handbook.reader, f"{handbook.reader}-pw", handbook.database))
    (team_home / "config.toml").write_text('[team]\nlibrary = "handbook"\n', encoding="utf-8")
    app = Application(team_home)
    try:
        library = app.library
        assert library.name == "team:handbook" and library.read_only() == reason
        assert [s.path for s in library.sources()] == [str(handbook.folder.resolve())]
        with pytest.raises(ReadOnlyLibrary, match=reason):
            library.index([handbook.folder])
        with pytest.raises(ReadOnlyLibrary, match=reason):
            library.remove(str(handbook.folder.resolve()))
        # Which collections answer: the reader's own library has nothing, the handbook has it.
        assistant = app.assistant()
        assert assistant.collections() == ["library", "handbook"]
        assert assistant.retrieve(QUESTION, 3, {"library"}) == ([], False)
        passages, _ = assistant.retrieve(QUESTION, 3, {"handbook"})
        assert passages and "27 days" in passages[0].text
    finally:
        app.close()
    refused = team_cli("index", handbook.folder)
    assert refused.returncode == 1 and refused.stderr.strip() == f"error: {reason}"
    unknown = team_cli("ask", "Hello?", "--collection", "handbok")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("error: no collection named 'handbok' here: choose from library "
                                      "(your own library), handbook")


def test_the_library_page_shows_a_read_only_collection_without_ways_to_change_it(
        handbook: Team, open_as, pg_server, team_home: Path, keyring_file: Path, qtbot) -> None:
    pytest.importorskip("PySide6")
    from archivist.application import Application
    from archivist.gui.window import MainWindow

    indexed_by_the_writer(handbook, open_as)
    add_collection(PluginContext(home=team_home), "handbook",
                   pg_server.url(handbook.reader, f"{handbook.reader}-pw", handbook.database))
    (team_home / "config.toml").write_text('[team]\nlibrary = "handbook"\n', encoding="utf-8")
    app = Application(team_home)
    try:
        win = MainWindow(app, load_model=False)
        qtbot.addWidget(win)
        win.show()
        win.show_page("Library")
        page = win.library
        reason = f"shared collection handbook: read-only for {handbook.reader}"
        qtbot.waitUntil(lambda: page.read_only == reason, timeout=120_000)  # the page's child process said so
        assert page.source_paths() == [str(handbook.folder.resolve())]
        assert page.read_only_note.isVisible() and page.read_only_note.text() == reason
        page.sources_table.selectRow(0)
        assert not any(b.isEnabled() for b in (page.add_button, page.remove_button, page.sync_button))
        page.add_folder(handbook.folder)  # (what the disabled button would do) does nothing
        assert not page.busy
        win.close()
    finally:
        app.close()


def test_no_collection_may_take_the_name_that_chooses_your_library(team_home: Path) -> None:
    from archivist import ArchivistError

    with pytest.raises(ArchivistError, match="'library' names your own library"):
        add_collection(PluginContext(home=team_home), "library", "postgresql://nobody@127.0.0.1:1/none")
