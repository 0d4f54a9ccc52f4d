"""The collections each conversation answers from.

Revision ID: 0003
Revises: 0002
Create Date: 2025-06-02

A user chooses per conversation which collections answer (their own library, shared
ones); the conversation keeps the choice (``collections``, a JSON list of names), so it
is restored when the conversation is reopened. Existing rows get NULL: all collections,
as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("collections", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("collections")
