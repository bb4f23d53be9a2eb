"""Speaker groups per clip, and each speaker's pooled child probability.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("speaker", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("speaker_child_probability", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.drop_column("speaker_child_probability")
        batch_op.drop_column("speaker")
