"""The tables Archivist keeps: conversations, their messages, and user settings.

These declarative models are what the code reads and writes *today*. The schema a user's
file actually has is built by the hand-written migrations in ``migrations/versions``;
a test compares the two so they cannot drift apart. Times are stored as UTC and always
come back timezone-aware, so the GUI can show them in local time without guessing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy import text as literal_sql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the store accepts)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC text and read back aware.

    SQLite has no time zone type; storing naive local times would make every timestamp
    ambiguous once the user travels or the clocks change. Naive input is refused
    rather than guessed at.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware (UTC) one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base; its metadata is what the migration test compares against."""


class Conversation(Base):
    """A chat thread, listed in the sidebar by ``updated_at`` (most recent first)."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow, index=True
    )
    # The collections chosen to answer in this conversation (their names, "library" for
    # the user's own; archivist.collection_choice); NULL: all of them.
    collections: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # The files pinned to this conversation (absolute paths, in the order pinned): its
    # questions are answered from them whole (archivist.whole_files); NULL: none.
    pinned_files: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Message.id",
    )


class Message(Base):
    """One turn of a conversation, with what produced it and what it cites.

    ``citations`` is a list of :meth:`archivist.types.Citation.to_dict` dicts; ``stats``
    holds token counts and timings; ``safety`` the verdict dicts the user was shown.
    They are JSON because their shape belongs to the assistant and plugins, not to
    the schema.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    model: Mapped[str | None] = mapped_column(String, nullable=True)
    provider: Mapped[str | None] = mapped_column(String, nullable=True)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, default=list, server_default=literal_sql("'[]'")
    )
    stats: Mapped[dict[str, Any]] = mapped_column(
        JSON, nullable=False, default=dict, server_default=literal_sql("'{}'")
    )
    safety: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, nullable=False, default=list, server_default=literal_sql("'[]'")
    )

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Setting(Base):
    """A user setting changed in the app (``config.toml`` holds the pre-database ones)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
