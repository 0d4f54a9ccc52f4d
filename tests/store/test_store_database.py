"""Opening, migrating and transacting on a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from archivist.errors import ArchivistError
from archivist.store import HEAD_REVISION, Conversations, Database, Settings, open_database
from archivist.store.database import alembic_config
from archivist.store.models import Base, Conversation


def _plain(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def test_fresh_database_is_created_at_head_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "archivist.db"
    with open_database(path) as db:
        assert path.exists()
        assert db.revision() == HEAD_REVISION
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    tables = {r[0] for r in _plain(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversations", "messages", "settings", "alembic_version"} <= tables


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_models_match_the_migrated_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_opening_an_up_to_date_database_does_not_import_alembic(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    open_database(path).close()
    code = (
        "import sys; from pathlib import Path; from archivist.store import open_database; "
        f"open_database(Path({str(path)!r})).close(); "
        "assert not [m for m in sys.modules if m.startswith('alembic')], 'alembic imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _database_at_0001(path: Path) -> None:
    from alembic import command

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    engine.dispose()
    con = _plain(path)
    with con:
        con.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES "
            "(1, 'Taxes 2023', '2024-03-01 10:00:00.000000', '2024-03-01 10:05:00.000000'), "
            "(2, 'Recipes', '2024-03-02 09:00:00.000000', '2024-03-02 09:00:00.000000')"
        )
        con.execute(
            "INSERT INTO messages (id, conversation_id, role, text, created_at, model, provider,"
            " citations, stats) VALUES "
            "(1, 1, 'user', 'What did I pay?', '2024-03-01 10:00:00.000000', NULL, NULL, '[]', '{}'),"
            "(2, 1, 'assistant', 'You paid 100 [1].', '2024-03-01 10:05:00.000000', 'phi-3', 'cpu',"
            " '[{\"n\": 1, \"path\": \"/docs/tax.pdf\", \"page\": 2}]', '{\"completion_tokens\": 7}'),"
            "(3, 2, 'user', 'Pancakes?', '2024-03-02 09:00:00.000000', NULL, NULL, '[]', '{}')"
        )
        con.execute("INSERT INTO settings (key, value) VALUES ('theme', '\"dark\"'), ('k', '5')")
    con.close()


def test_database_at_0001_is_upgraded_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    _database_at_0001(path)
    columns = {r[1] for r in _plain(path).execute("PRAGMA table_info(messages)")}
    assert "safety" not in columns

    with open_database(path) as db:
        assert db.revision() == HEAD_REVISION
        conversations = Conversations(db)
        listed = conversations.list_conversations()
        assert [(c.id, c.title, c.message_count) for c in listed] == [
            (2, "Recipes", 1),
            (1, "Taxes 2023", 2),
        ]
        answer = conversations.messages(1)[1]
        assert answer.text == "You paid 100 [1]."
        assert answer.citations == [{"n": 1, "path": "/docs/tax.pdf", "page": 2}]
        assert answer.stats == {"completion_tokens": 7}
        assert (answer.model, answer.provider, answer.safety) == ("phi-3", "cpu", [])
        assert answer.created_at.tzinfo is not None
        assert Settings(db).all() == {"k": 5, "theme": "dark"}
        with db.session(write=False) as s:
            from archivist.store.models import Setting

            assert all(row.updated_at.tzinfo for row in s.scalars(select(Setting)))

        # The upgraded schema still enforces the cascade.
        assert conversations.delete(1)
    assert _plain(path).execute("SELECT id FROM messages").fetchall() == [(3,)]


def test_database_from_a_newer_version_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    open_database(path).close()
    con = _plain(path)
    with con:
        con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    con.close()
    with pytest.raises(ArchivistError, match="newer version of Archivist") as info:
        open_database(path)
    assert "9999_from_the_future" in str(info.value)
    revision = _plain(path).execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == ("9999_from_the_future",)


def test_a_failure_inside_a_session_leaves_nothing_written(db: Database) -> None:
    with pytest.raises(RuntimeError):
        with db.session() as s:
            s.add(Conversation(title="half"))
            s.flush()
            raise RuntimeError("crash mid-way")
    assert Conversations(db).list_conversations() == []
    assert _plain(db.path).execute("SELECT COUNT(*) FROM conversations").fetchone() == (0,)


def test_a_failed_upgrade_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "archivist.db"
    _database_at_0001(path)
    con = _plain(path)
    with con:  # make the last step of 0002 fail: its index name is already taken
        con.execute("CREATE INDEX ix_conversations_updated_at ON messages (role)")
    con.close()
    with pytest.raises(ArchivistError, match="cannot upgrade"):
        open_database(path)
    con = _plain(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
    assert "safety" not in {r[1] for r in con.execute("PRAGMA table_info(messages)")}
    assert "updated_at" not in {r[1] for r in con.execute("PRAGMA table_info(settings)")}
    assert con.execute("SELECT COUNT(*) FROM messages").fetchone() == (3,)
    assert con.execute("SELECT COUNT(*) FROM settings").fetchone() == (2,)


def test_two_threads_writing_at_once_both_succeed(db: Database) -> None:
    conversations = Conversations(db)
    settings = Settings(db)
    target = conversations.create_conversation("busy")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            start.wait()
            for i in range(40):
                conversations.add_message(target, "user", f"{name} {i}")
                settings.set(f"{name}.last", i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    texts = [m.text for m in conversations.messages(target)]
    assert len(texts) == 80
    assert {t for t in texts if t.startswith("a ")} == {f"a {i}" for i in range(40)}
    assert settings.all() == {"a.last": 39, "b.last": 39}
