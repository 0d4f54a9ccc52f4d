"""``[team] library = NAME`` makes a collection the library the app's front ends fill:
``archivist index`` (the core's LibraryService) then writes to PostgreSQL, not to FAISS."""

from __future__ import annotations

from pathlib import Path

from archivist import PluginContext
from archivist_team.commands import add_collection


def test_a_collection_can_be_the_library(pg_server, pg_database, team_home: Path, keyring_file: Path,
                                         tmp_path: Path) -> None:
    from archivist.application import Application

    add_collection(PluginContext(home=team_home), "shared", pg_server.url(database=pg_database), create=True)
    (team_home / "config.toml").write_text('[team]\nlibrary = "shared"\n', encoding="utf-8")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "mill.txt").write_text("The windmill on Sand Lane grinds barley for the brewery.\n", encoding="utf-8")
    app = Application(team_home)
    try:
        library = app.library
        assert library.name == "team:shared"
        report = library.index([folder])
        assert report.indexed == [str((folder / "mill.txt").resolve())] and library.count() == report.passages
        passages, _ = app.assistant().retrieve("What does the windmill grind?", 3)
        assert passages and passages[0].path == report.indexed[0] and "barley" in passages[0].text
    finally:
        app.close()
