"""Taking back the last question and answer, for Regenerate and Edit-and-resend.

The store has no "delete this message", so a conversation is rewound by copying every
message but the last turn into a fresh conversation with the same title, then deleting
the old one, both through the public :class:`Conversations` API. The conversation's id
changes; the sidebar follows the returned one. Runs on the worker thread, before the
new turn. Qt-free.
"""

from __future__ import annotations

from archivist.store.conversations import Conversations


def drop_last_turn(conversations: Conversations, conversation_id: int) -> int:
    """A copy of the conversation without its last user message and what followed it."""
    messages = conversations.messages(conversation_id)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    record = conversations.get_conversation(conversation_id)
    title = record.title if record is not None else "Conversation"
    new_id = conversations.create_conversation(title)
    for m in messages[:last_user]:
        conversations.add_message(
            new_id,
            m.role,  # type: ignore[arg-type]
            m.text,
            model=m.model,
            provider=m.provider,
            citations=m.citations,
            stats=m.stats,
            safety=m.safety,
        )
    conversations.delete(conversation_id)
    return new_id
