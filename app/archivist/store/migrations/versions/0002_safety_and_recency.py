"""Safety verdicts on messages, change times on settings, recency index on conversations.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15

The GUI shows the user what the safety filter decided about each answer, so messages
keep those verdicts (``safety``, a JSON list; existing rows get ``[]``). Settings gain
``updated_at`` so the GUI can show and sync what changed (existing rows get the time of
the upgrade). The sidebar lists conversations by recency, hence the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("safety", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    # SQLite cannot ADD COLUMN with a non-constant default: add it nullable, fill it,
    # then let batch mode rebuild the table with NOT NULL.
    with op.batch_alter_table("settings") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE settings SET updated_at = strftime('%Y-%m-%d %H:%M:%f000', 'now') "
        "WHERE updated_at IS NULL"
    )
    with op.batch_alter_table("settings") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    with op.batch_alter_table("settings") as batch:
        batch.drop_column("updated_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("safety")
