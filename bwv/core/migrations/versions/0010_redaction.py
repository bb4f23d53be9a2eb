"""Face tracks and redacted copies.

A face scan per clip (model hash, settings, video size), the face tracks it found (each
with its per-frame boxes and a thumbnail in the store), and every redacted copy made
(store path and hash, its log's path and hash, what was hidden and why, who made it).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facescan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clip_id", sa.Integer(), sa.ForeignKey("clip.id"), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_facescan_clip_id", "facescan", ["clip_id"], unique=True)
    op.create_table(
        "facetrack",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clip_id", sa.Integer(), sa.ForeignKey("clip.id"), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("max_width_px", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(length=64), nullable=True),
        sa.Column("thumbnail_path", sa.String(), nullable=True),
        sa.Column("keys_json", sa.Text(), nullable=False),
        sa.UniqueConstraint("clip_id", "label"),
    )
    op.create_index("ix_facetrack_clip_id", "facetrack", ["clip_id"])
    op.create_table(
        "redaction",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clip_id", sa.Integer(), sa.ForeignKey("clip.id"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("log_sha256", sa.String(length=64), nullable=False),
        sa.Column("log_path", sa.String(), nullable=False),
        sa.Column("tracks", sa.String(), nullable=False),
        sa.Column("spans_json", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_redaction_clip_id", "redaction", ["clip_id"])


def downgrade() -> None:
    op.drop_table("redaction")
    op.drop_table("facetrack")
    op.drop_table("facescan")
