"""Redaction jobs: the Redact page's detections and renders, kept in the catalogue.

On PostgreSQL a `bwv worker` on another machine runs them (queue `redact`), so the
page that polls a job's stage and progress cannot read them from its own memory: the
runner writes them here. On SQLite the web app's own thread writes the same rows.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redactionjob",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("clip_id", sa.Integer(), sa.ForeignKey("clip.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("choices_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("runner", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_redactionjob_clip_id", "redactionjob", ["clip_id"])


def downgrade() -> None:
    op.drop_table("redactionjob")
