"""Child speech seconds are computed from the policy in force, not stored at ingest.

The stored figure was fixed at the threshold ingest used, so `bwv show` and a report run
with another policy disagreed about the same clip. It is derived from the transcript
segments wherever it is shown (bwv.core.child_speech), so the column goes.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER (SQLite 3.35+ and PostgreSQL): a batch copy of `clip` would have to
    # drop a table that every other table's rows point at.
    op.execute("ALTER TABLE clip DROP COLUMN child_speech_seconds")


def downgrade() -> None:
    op.add_column("clip", sa.Column("child_speech_seconds", sa.Float(), nullable=True))
