"""The conversation repository over a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC

import pytest

from archivist.store import ConversationNotFound, Conversations, Database
from archivist.types import Action, ChatMessage, Citation, Verdict


def test_round_trip_with_citations_stats_and_safety(conversations: Conversations) -> None:
    cid = conversations.create_conversation("Holiday plans")
    q = conversations.add_message(cid, "user", "Where did we go in 2019?")
    citation = Citation(n=1, path="/docs/trip.md", page=None, start=10, end=42,
                        snippet="We went to Lisbon", score=0.83)
    verdict = Verdict(Action.WARN, categories=("pii",), reason="mentions a place")
    a = conversations.add_message(
        cid, "assistant", "Lisbon [1].", model="phi-3-mini", provider="cpu",
        citations=[citation], stats={"prompt_tokens": 120, "completion_tokens": 4,
                                     "seconds": 0.5}, safety=[verdict],
    )
    assert a > q
    messages = conversations.messages(cid)
    assert [m.id for m in messages] == [q, a]
    assert messages[0].citations == [] and messages[0].stats == {} and messages[0].safety == []
    answer = messages[1]
    assert (answer.role, answer.text, answer.model, answer.provider) == (
        "assistant", "Lisbon [1].", "phi-3-mini", "cpu")
    assert answer.citations == [citation.to_dict()]
    assert answer.stats == {"prompt_tokens": 120, "completion_tokens": 4, "seconds": 0.5}
    assert answer.safety == [verdict.to_dict()]
    assert answer.safety[0]["action"] == "warn"
    assert answer.created_at.tzinfo == UTC
    assert answer.to_chat_message() == ChatMessage("assistant", "Lisbon [1].")

    record = conversations.get_conversation(cid)
    assert record is not None
    assert (record.title, record.message_count) == ("Holiday plans", 2)
    assert record.updated_at >= record.created_at
    assert conversations.get_conversation(cid + 100) is None


def test_delete_cascades_to_messages(db: Database, conversations: Conversations) -> None:
    keep = conversations.create_conversation("keep")
    gone = conversations.create_conversation("gone")
    conversations.add_message(keep, "user", "stay")
    for i in range(3):
        conversations.add_message(gone, "user", f"bye {i}")
    assert conversations.delete(gone) is True
    assert conversations.delete(gone) is False
    assert conversations.messages(gone) == []
    rows = sqlite3.connect(db.path).execute("SELECT conversation_id FROM messages").fetchall()
    assert rows == [(keep,)]


def test_search_finds_by_title_and_by_message_text(conversations: Conversations) -> None:
    taxes = conversations.create_conversation("Taxes 2023")
    cooking = conversations.create_conversation("Dinner")
    conversations.add_message(cooking, "user", "How long do I boil an egg?")
    conversations.add_message(taxes, "user", "Which receipts matter?")
    percent = conversations.create_conversation("Growth of 100% per year")

    assert [c.id for c in conversations.list_conversations("taxes")] == [taxes]
    assert [c.id for c in conversations.list_conversations("EGG")] == [cooking]
    assert [c.id for c in conversations.list_conversations("100%")] == [percent]
    assert conversations.list_conversations("no such words") == []
    # most recently updated first; blank search lists all
    assert [c.id for c in conversations.list_conversations("  ")] == [percent, taxes, cooking]


def test_rename_and_update_message_text(conversations: Conversations) -> None:
    cid = conversations.create_conversation("Untitled")
    mid = conversations.add_message(cid, "assistant", "draft", model="a",
                                    citations=[{"n": 1}], stats={"seconds": 1})
    conversations.rename(cid, "Named")
    conversations.update_message_text(mid, "regenerated", model="b", citations=[],
                                      safety=[{"action": "allow"}])
    [m] = conversations.messages(cid)
    assert (m.text, m.model, m.citations, m.stats, m.safety) == (
        "regenerated", "b", [], {"seconds": 1}, [{"action": "allow"}])
    assert conversations.get_conversation(cid).title == "Named"  # type: ignore[union-attr]

    with pytest.raises(ConversationNotFound):
        conversations.rename(cid + 1, "x")
    with pytest.raises(ConversationNotFound):
        conversations.update_message_text(mid + 1, "x")
    with pytest.raises(ConversationNotFound):
        conversations.add_message(cid + 1, "user", "x")
    with pytest.raises(ValueError):
        conversations.add_message(cid, "robot", "x")  # type: ignore[arg-type]
