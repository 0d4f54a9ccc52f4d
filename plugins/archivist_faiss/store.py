"""The plugin's own SQLite database (SQLAlchemy): sources, files, chunks, FTS5 keywords.

Chunk texts, locators and embeddings live here, so the FAISS file is only a cache that
can always be rebuilt. A file's chunks, their keyword rows and the file's state are
written in one transaction, then their embeddings in others (:mod:`records`): a run
killed midway leaves either the old version of a file or the new one, never half of it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

SCHEMA_VERSION = 1

# A file's status. "failed": skipped for a reason that may pass (a timeout, memory, a
# loader that raised, a failed write), so it is read again at the next sync; "skipped":
# for one that lasts as long as the file (unsupported, encrypted, no text, a link).
# "embedding": its passages are written and searchable by keyword, their vectors are
# still being computed (records.py); a sync that finds a file so resumes its embedding.
INDEXED, SKIPPED, FAILED, PENDING = "indexed", "skipped", "failed", "embedding"


class Base(DeclarativeBase):
    pass


class Source(Base):
    """A folder (or single file) the user asked to index."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    added_at: Mapped[str] = mapped_column(String)
    files: Mapped[list[File]] = relationship(back_populates="source", cascade="all, delete-orphan")


class File(Base):
    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)  # INDEXED, PENDING, SKIPPED or FAILED
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(String, nullable=True)
    loader: Mapped[str | None] = mapped_column(String, nullable=True)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[str] = mapped_column(String)
    source: Mapped[Source] = relationship(back_populates="files")
    chunks: Mapped[list[ChunkRow]] = relationship(back_populates="file", cascade="all, delete-orphan")


class ChunkRow(Base):
    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # also the FAISS id and FTS rowid
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    section: Mapped[str | None] = mapped_column(String, nullable=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length; b"" until embedded
    file: Mapped[File] = relationship(back_populates="chunks")


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "text, meta, tokenize = 'porter unicode61 remove_diacritics 2')"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def open_engine(db_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", future=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    for attempt in range(CREATE_ATTEMPTS):
        try:
            _create(engine)
            break
        except OperationalError as exc:
            # Two processes opening a new index at once (two `archivist index` runs, the
            # window and the command line) both see no table and both create it: the
            # second is told the table exists. Once the first is done, nothing is left to do.
            if attempt == CREATE_ATTEMPTS - 1 or not ("already exists" in str(exc) or "locked" in str(exc)):
                raise
            time.sleep(0.1 * (attempt + 1))
    return engine


CREATE_ATTEMPTS = 5


def _create(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text(FTS_DDL))
        conn.execute(text("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', :v)"),
                     {"v": str(SCHEMA_VERSION)})
        conn.execute(text("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')"))


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
