"""Conversations and their messages, as the CLI and GUI read and write them.

Results are frozen dataclasses rather than ORM objects: they carry no session, so a GUI
worker thread can hand them to the UI thread, and nothing lazy-loads behind anyone's
back. Each method is one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, get_args

from sqlalchemy import exists, func, or_, select, update

from archivist.errors import ArchivistError
from archivist.store.database import Database
from archivist.store.models import Conversation, Message, utcnow
from archivist.types import ChatMessage, Role

_ROLES: frozenset[str] = frozenset(get_args(Role))
# Lone surrogates (from bytes decoded with "surrogateescape", a JSON "\udcff"): they have
# no UTF-8 form, so SQLite cannot store them; each is kept as U+FFFD.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with any lone surrogate replaced by U+FFFD, so it can be stored and printed."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


class ConversationNotFound(ArchivistError, LookupError):
    """A conversation or message id that is not (or no longer) in the store."""


class _ToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


#: A citation or safety verdict: the dataclass from ``archivist.types`` or its dict.
JSONItem = _ToDict | Mapping[str, Any]


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation as listed in the sidebar."""

    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    collections: frozenset[str] | None = None  # the collections chosen to answer; None: all
    pinned_files: tuple[str, ...] = ()  # files its questions are answered from whole; (): none


@dataclass(frozen=True)
class MessageRecord:
    """A stored message with its citations, stats and safety verdicts (JSON dicts)."""

    id: int
    conversation_id: int
    role: str
    text: str
    created_at: datetime
    model: str | None
    provider: str | None
    citations: list[dict[str, Any]]
    stats: dict[str, Any]
    safety: list[dict[str, Any]]

    def to_chat_message(self) -> ChatMessage:
        """The message as prompt history."""
        return ChatMessage(role=self.role, content=self.text)  # type: ignore[arg-type]


class Conversations:
    """The repository over one :class:`Database`; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_conversation(self, title: str) -> int:
        with self.db.session() as s:
            conversation = Conversation(title=storable(title))
            s.add(conversation)
            s.flush()
            return conversation.id

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        text: str,
        model: str | None = None,
        provider: str | None = None,
        citations: Sequence[JSONItem] | None = None,
        stats: Mapping[str, Any] | None = None,
        safety: Sequence[JSONItem] | None = None,
    ) -> int:
        """Append a message and mark the conversation as just updated."""
        if role not in _ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(_ROLES)}")
        with self.db.session() as s:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation with id {conversation_id}")
            message = Message(
                conversation_id=conversation_id,
                role=role,
                text=storable(text),
                model=model,
                provider=provider,
                citations=_json_list(citations),
                stats=dict(stats or {}),
                safety=_json_list(safety),
            )
            s.add(message)
            conversation.updated_at = utcnow()
            s.flush()
            return message.id

    def save_turn(
        self,
        conversation_id: int | None,
        question: str,
        answer: str,
        *,
        title: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        citations: Sequence[JSONItem] | None = None,
        stats: Mapping[str, Any] | None = None,
        safety: Sequence[JSONItem] | None = None,
        collections: Collection[str] | None = None,
        pinned_files: Sequence[str] | None = None,
    ) -> tuple[int, int]:
        """Store one chat turn in one transaction: the conversation (a new one, titled
        ``title`` or the question, when ``conversation_id`` is None), the question and
        its answer. A process killed midway leaves all of it or none of it: never a
        conversation without messages, nor a question without its answer.

        ``collections``, when given, becomes the conversation's choice of collections
        (None keeps the one it has; a new conversation's is then all of them).
        ``pinned_files``, when given, become the files pinned to it (None keeps them).

        Returns the conversation's id and the answer's message id.
        """
        with self.db.session() as s:
            if conversation_id is None:
                conversation = Conversation(title=storable(title if title is not None else question))
                s.add(conversation)
                s.flush()
            else:
                found = s.get(Conversation, conversation_id)
                if found is None:
                    raise ConversationNotFound(f"no conversation with id {conversation_id}")
                conversation = found
            if collections is not None:
                conversation.collections = sorted(collections)
            if pinned_files is not None:
                conversation.pinned_files = _pins(pinned_files)
            s.add(Message(conversation_id=conversation.id, role="user", text=storable(question),
                          citations=[], stats={}, safety=[]))
            reply = Message(
                conversation_id=conversation.id,
                role="assistant",
                text=storable(answer),
                model=model,
                provider=provider,
                citations=_json_list(citations),
                stats=dict(stats or {}),
                safety=_json_list(safety),
            )
            s.add(reply)
            conversation.updated_at = utcnow()
            s.flush()
            return conversation.id, reply.id

    def history(self, conversation_id: int) -> list[ChatMessage]:
        """The conversation as prompt history: each question followed by its answer.

        A question stored without an answer is left out, as is an answer with no
        question before it: chat templates want the roles to alternate. (Archivist once
        stored a turn in three transactions, so a process killed between them left a
        question without its answer, and continuing that conversation stored a second
        question right after it.)
        """
        turns: list[ChatMessage] = []
        question: MessageRecord | None = None
        for m in self.messages(conversation_id):
            if m.role == "user":
                question = m
            elif m.role == "assistant" and question is not None:
                turns += [question.to_chat_message(), m.to_chat_message()]
                question = None
        return turns

    def list_conversations(self, search: str | None = None) -> list[ConversationRecord]:
        """Most recently updated first; ``search`` matches titles and message text.

        Matching is a case-insensitive substring (SQLite ``LIKE``: ASCII case only).
        """
        count = (
            select(func.count(Message.id))
            .where(Message.conversation_id == Conversation.id)
            .scalar_subquery()
        )
        query = select(Conversation, count).order_by(
            Conversation.updated_at.desc(), Conversation.id.desc()
        )
        if search and search.strip():
            pattern = "%" + _escape_like(search.strip()) + "%"
            in_messages = exists().where(
                Message.conversation_id == Conversation.id,
                Message.text.ilike(pattern, escape="\\"),
            )
            query = query.where(or_(Conversation.title.ilike(pattern, escape="\\"), in_messages))
        with self.db.session(write=False) as s:
            return [_conversation_record(c, n) for c, n in s.execute(query)]

    def get_conversation(self, conversation_id: int) -> ConversationRecord | None:
        count = select(func.count(Message.id)).where(Message.conversation_id == conversation_id)
        with self.db.session(write=False) as s:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None:
                return None
            return _conversation_record(conversation, s.scalar(count) or 0)

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """The conversation's messages in the order they were added."""
        query = (
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
        with self.db.session(write=False) as s:
            return [_message_record(m) for m in s.scalars(query)]

    def chosen_collections(self, conversation_id: int) -> frozenset[str] | None:
        """The collections chosen to answer in the conversation (None: all of them, or no
        such conversation)."""
        with self.db.session(write=False) as s:
            conversation = s.get(Conversation, conversation_id)
            return None if conversation is None else _choice(conversation.collections)

    def choose_collections(self, conversation_id: int, collections: Collection[str] | None) -> None:
        """Keep ``collections`` (names; None: all of them) as the conversation's choice.
        The conversation keeps its place in the list (its ``updated_at``)."""
        names = None if collections is None else sorted(collections)
        with self.db.session() as s:
            changed = s.execute(
                update(Conversation).where(Conversation.id == conversation_id)
                .values(collections=names, updated_at=Conversation.updated_at)
            ).rowcount  # type: ignore[attr-defined]
            if not changed:
                raise ConversationNotFound(f"no conversation with id {conversation_id}")

    def pinned_files(self, conversation_id: int) -> tuple[str, ...]:
        """The files pinned to the conversation, in the order pinned (none for no such
        conversation)."""
        with self.db.session(write=False) as s:
            conversation = s.get(Conversation, conversation_id)
            return () if conversation is None else _pinned(conversation.pinned_files)

    def pin_files(self, conversation_id: int, paths: Sequence[str]) -> None:
        """Keep ``paths`` (the whole list; empty: none) as the files pinned to the
        conversation. It keeps its place in the list (its ``updated_at``)."""
        with self.db.session() as s:
            changed = s.execute(
                update(Conversation).where(Conversation.id == conversation_id)
                .values(pinned_files=_pins(paths) or None, updated_at=Conversation.updated_at)
            ).rowcount  # type: ignore[attr-defined]
            if not changed:
                raise ConversationNotFound(f"no conversation with id {conversation_id}")

    def rename(self, conversation_id: int, title: str) -> None:
        with self.db.session() as s:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation with id {conversation_id}")
            conversation.title = title

    def delete(self, conversation_id: int) -> bool:
        """Delete a conversation and its messages; ``False`` if it was already gone."""
        with self.db.session() as s:
            conversation = s.get(Conversation, conversation_id)
            if conversation is None:
                return False
            s.delete(conversation)
            return True

    def update_message_text(
        self,
        message_id: int,
        text: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        citations: Sequence[JSONItem] | None = None,
        stats: Mapping[str, Any] | None = None,
        safety: Sequence[JSONItem] | None = None,
    ) -> None:
        """Replace a message's text (edit or regenerate); other fields change if given.

        A regenerated answer has new citations, stats and verdicts; an edited question
        keeps its own, so ``None`` means "keep".
        """
        with self.db.session() as s:
            message = s.get(Message, message_id)
            if message is None:
                raise ConversationNotFound(f"no message with id {message_id}")
            message.text = storable(text)
            if model is not None:
                message.model = model
            if provider is not None:
                message.provider = provider
            if citations is not None:
                message.citations = _json_list(citations)
            if stats is not None:
                message.stats = dict(stats)
            if safety is not None:
                message.safety = _json_list(safety)
            message.conversation.updated_at = utcnow()


def _json_list(items: Sequence[JSONItem] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items or ():
        out.append(item.to_dict() if hasattr(item, "to_dict") else dict(item))
    return out


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _choice(names: Any) -> frozenset[str] | None:
    return frozenset(str(n) for n in names) if isinstance(names, list) else None


def _pins(paths: Sequence[str]) -> list[str] | None:
    """``paths`` as stored: each once, in order, storable; None for none."""
    kept = list(dict.fromkeys(storable(str(p)) for p in paths))
    return kept or None


def _pinned(paths: Any) -> tuple[str, ...]:
    return tuple(str(p) for p in paths) if isinstance(paths, list) else ()


def _conversation_record(c: Conversation, message_count: int) -> ConversationRecord:
    return ConversationRecord(c.id, c.title, c.created_at, c.updated_at, int(message_count), _choice(c.collections),
                              _pinned(c.pinned_files))


def _message_record(m: Message) -> MessageRecord:
    return MessageRecord(
        id=m.id,
        conversation_id=m.conversation_id,
        role=m.role,
        text=m.text,
        created_at=m.created_at,
        model=m.model,
        provider=m.provider,
        citations=list(m.citations or []),
        stats=dict(m.stats or {}),
        safety=list(m.safety or []),
    )
