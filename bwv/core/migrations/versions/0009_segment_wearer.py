"""Which speaker group of a clip is the camera's wearer.

The wearer's voice is near-field, the loudest and usually the most frequent in the clip;
marking it lets `show` and the transcript exports tell the officer from everyone else,
and lets the compliance rule count speech by someone other than the officer (the
`OTHER_VOICE` evidence for older children). NULL for clips ingested before this revision
or without child-voice attribution.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wearer", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.drop_column("wearer")
