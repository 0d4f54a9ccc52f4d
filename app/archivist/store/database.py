"""Opening the SQLite file: connection settings, migrations at start, units of work.

Every connection gets WAL, foreign keys, ``synchronous=NORMAL`` and a busy timeout, so
GUI worker threads and the CLI can share one file. SQLAlchemy emits ``BEGIN`` itself
(the ``sqlite3`` module's legacy mode would not wrap DDL or reads in a transaction), and
write units of work use ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout
instead of one failing on a read-to-write lock upgrade.

Startup stays fast: the schema revision is read with one plain query and Alembic is
imported only when it differs from :data:`HEAD_REVISION`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from archivist.config import database_damaged, is_damaged_sqlite
from archivist.errors import ArchivistError

#: The newest migration in ``migrations/versions``; a test keeps it equal to Alembic's head.
HEAD_REVISION = "0004"

BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "archivist_begin"
_SCRIPT_LOCATION = "archivist.store:migrations"


class Database:
    """An open store file. Thread-safe: take one :meth:`session` per unit of work."""

    def __init__(self, path: Path, engine: Engine) -> None:
        self.path = path
        self.engine = engine
        self._writer = sessionmaker(
            bind=engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}),
            expire_on_commit=False,
        )
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.

        ``write=False`` starts a deferred transaction, which never waits for writers
        (WAL readers see the last commit); use it for reads only.
        """
        factory = self._writer if write else self._reader
        try:
            with factory() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            if is_damaged_sqlite(exc):  # one line with the way out, not a driver's traceback
                raise database_damaged(self.path) from exc
            raise

    def revision(self) -> str | None:
        """The schema revision recorded in the file (``None`` for an empty file)."""
        with self.engine.connect() as conn:
            return _read_revision(conn)

    def close(self) -> None:
        """Close pooled connections (the WAL is checkpointed when the last one closes)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(path: Path) -> Database:
    """Open (creating if needed) the store at ``path``, upgraded to the current schema.

    Raises :class:`ArchivistError` when the file cannot be opened or upgraded, or was
    written by a newer Archivist than this one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = _make_engine(path, foreign_keys=True, pool="queue")
        with engine.connect() as conn:
            current = _read_revision(conn)
    except (OSError, SQLAlchemyError) as exc:
        if is_damaged_sqlite(exc):
            raise database_damaged(path) from exc
        raise ArchivistError(f"cannot open the database {path}: {exc}") from exc
    if current != HEAD_REVISION:
        try:
            _upgrade(path, current)
        except BaseException:
            engine.dispose()
            raise
    return Database(path, engine)


def _make_engine(path: Path, *, foreign_keys: bool, pool: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if pool == "queue":
        # SQLite allows one writer at a time; a few connections cover the GUI's workers
        # and readers without piling up file handles.
        kwargs.update(pool_size=4, max_overflow=4, pool_timeout=30)
    else:
        from sqlalchemy.pool import NullPool

        kwargs["poolclass"] = NullPool
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN (below). This needs the driver's legacy transaction
        # control, which Python 3.16 stops defaulting to: ask for it where it exists.
        if sys.version_info >= (3, 12) and hasattr(dbapi_connection, "autocommit"):  # 3.12 added both
            import sqlite3

            dbapi_connection.autocommit = sqlite3.LEGACY_TRANSACTION_CONTROL
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _read_revision(conn: Connection) -> str | None:
    has_table = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
    ).scalar()
    if not has_table:
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for the store's migrations, built in code (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(path: Path, current: str | None) -> None:
    """Run ``alembic upgrade head`` as one transaction, foreign keys off.

    Batch migrations rebuild tables (copy, drop, rename); with foreign keys on, dropping
    a parent table would cascade-delete its children, so they are off while migrating
    and checked with ``foreign_key_check`` before the commit.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise ArchivistError(
            f"the database {path} was written by a newer version of Archivist "
            f"(schema revision {current!r}; this version knows up to {HEAD_REVISION!r}). "
            "Update Archivist, or move the file away to start afresh."
        )
    engine = _make_engine(path, foreign_keys=False, pool="null")
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                command.upgrade(alembic_config(conn), "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ArchivistError(
                        f"upgrading the database {path} would break {len(broken)} "
                        "references; nothing was changed"
                    )
    except ArchivistError:
        raise
    except Exception as exc:
        if is_damaged_sqlite(exc):
            raise database_damaged(path) from exc
        raise ArchivistError(
            f"cannot upgrade the database {path} from schema revision {current!r}: {exc}"
        ) from exc
    finally:
        engine.dispose()
