"""Settings as JSON values by key, over a real SQLite file."""

from __future__ import annotations

from sqlalchemy import select

from archivist.store import Database, Settings
from archivist.store.models import Setting


def test_settings_round_trip(settings: Settings) -> None:
    assert settings.get("theme") is None
    assert settings.get("theme", "light") == "light"
    settings.set("theme", "dark")
    settings.set("retrieval", {"k": 6, "paths": ["/docs"], "hybrid": True})
    settings.set("theme", "sepia")
    settings.set("nothing", None)
    assert settings.get("theme") == "sepia"
    assert settings.get("retrieval") == {"k": 6, "paths": ["/docs"], "hybrid": True}
    assert settings.get("nothing", "default") is None  # stored None is a value
    assert settings.all() == {
        "nothing": None,
        "retrieval": {"k": 6, "paths": ["/docs"], "hybrid": True},
        "theme": "sepia",
    }
    assert settings.delete("theme") is True
    assert settings.delete("theme") is False
    assert settings.get("theme", "light") == "light"


def test_setting_changes_are_timed(db: Database, settings: Settings) -> None:
    settings.set("a", 1)
    with db.session(write=False) as s:
        first = s.scalars(select(Setting.updated_at)).one()
    settings.set("a", 2)
    with db.session(write=False) as s:
        second = s.scalars(select(Setting.updated_at)).one()
    assert first.tzinfo is not None and second >= first
