"""Fixtures for store tests: a real SQLite file in a temporary folder, opened at head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archivist.store import Conversations, Database, Settings, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(tmp_path / "home" / "archivist.db")
    yield database
    database.close()


@pytest.fixture
def conversations(db: Database) -> Conversations:
    return Conversations(db)


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(db)
