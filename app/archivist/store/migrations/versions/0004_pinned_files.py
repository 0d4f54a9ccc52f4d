"""The files pinned to each conversation.

Revision ID: 0004
Revises: 0003
Create Date: 2025-06-10

A user may pin files to a conversation so that its questions are answered from those
files whole (``archivist ask --file``, the chat's "Pin files…"); the conversation keeps
them (``pinned_files``, a JSON list of absolute paths), so a reopened conversation still
answers from them. Existing rows get NULL: nothing pinned, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("pinned_files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("pinned_files")
