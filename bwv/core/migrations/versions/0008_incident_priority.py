"""Incidents carry their command-and-control priority, for time to first arrival.

The inspection found children were not always seen quickly enough; the report measures
report-to-first-arrival against a target per priority (P1, P2, ...). Existing incidents
have none ('') and are measured against the policy's default target.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "incident",
        sa.Column("priority", sa.String(length=16), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE incident DROP COLUMN priority")
