"""The audit trail refuses UPDATE, DELETE and TRUNCATE on PostgreSQL.

On PostgreSQL a trigger makes `auditevent` append-only for every role, its owner included;
only a role allowed to alter the table (owner, superuser) can drop or disable the trigger,
and any change made after that is still exposed by the hash chain. On
SQLite this revision does nothing: anyone who can write the file can also drop a trigger,
so SQLite relies on the hash chain alone and `bwv audit verify` (see docs/custody.md).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION bwv_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
TRIGGERS = (
    "CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent "
    "FOR EACH ROW EXECUTE FUNCTION bwv_audit_append_only()",
    "CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON auditevent "
    "FOR EACH STATEMENT EXECUTE FUNCTION bwv_audit_append_only()",
)
DROPS = (
    "DROP TRIGGER IF EXISTS auditevent_no_truncate ON auditevent",
    "DROP TRIGGER IF EXISTS auditevent_append_only ON auditevent",
    "DROP FUNCTION IF EXISTS bwv_audit_append_only()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: nothing to enforce that the file's owner could not undo.
    op.execute(FUNCTION)
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DROPS:
        op.execute(statement)
