"""Full-text index over transcript segments (SQLite FTS5; PostgreSQL searches with ILIKE).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = {
    "transcript_fts_ai": "AFTER INSERT ON transcriptsegment BEGIN "
    "INSERT INTO transcript_fts(rowid, text) VALUES (new.id, new.text); END",
    "transcript_fts_ad": "AFTER DELETE ON transcriptsegment BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "transcript_fts_au": "AFTER UPDATE OF text ON transcriptsegment BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO transcript_fts(rowid, text) VALUES (new.id, new.text); END",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE VIRTUAL TABLE transcript_fts USING fts5("
        "text, content='transcriptsegment', content_rowid='id', tokenize='porter unicode61')"
    )
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS transcript_fts")
