"""Settings read before the database opens (the first question's fast path)."""

from __future__ import annotations

from pathlib import Path

from archivist.config import Paths, peek_setting, read_disabled_plugins, write_disabled_plugins
from archivist.store.database import open_database
from archivist.store.settings import Settings


def test_peek_setting_reads_what_the_store_wrote(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    assert peek_setting(paths, "model.id", "fallback") == "fallback"  # no database yet
    db = open_database(paths.database)
    try:
        Settings(db).set("model.id", "/models/phi-3")
        Settings(db).set("ui", {"theme": "dark", "size": 12})
        assert peek_setting(paths, "model.id") == "/models/phi-3"
        assert peek_setting(paths, "ui") == {"theme": "dark", "size": 12}
        assert peek_setting(paths, "missing", 7) == 7
    finally:
        db.close()


def test_disabled_plugins_round_trip_and_survive_a_broken_file(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    write_disabled_plugins(paths, {"b", "a"})
    assert read_disabled_plugins(paths) == {"a", "b"}
    paths.plugin_state.write_text("{not json")
    assert read_disabled_plugins(paths) == set()
