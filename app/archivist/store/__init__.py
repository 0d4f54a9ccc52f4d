"""The store: conversations, messages and settings in one SQLite file, migrated at start.

Open it with :func:`open_database` and use :class:`Conversations` and :class:`Settings`
over it; both return plain values that may cross threads.
"""

from archivist.store.conversations import (
    ConversationNotFound,
    ConversationRecord,
    Conversations,
    MessageRecord,
)
from archivist.store.database import HEAD_REVISION, Database, open_database
from archivist.store.settings import Settings

__all__ = [
    "HEAD_REVISION",
    "ConversationNotFound",
    "ConversationRecord",
    "Conversations",
    "Database",
    "MessageRecord",
    "Settings",
    "open_database",
]
