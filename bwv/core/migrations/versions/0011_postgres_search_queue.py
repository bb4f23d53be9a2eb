"""PostgreSQL as a shared catalogue: word search, file sizes over 2 GiB, the job queue.

On PostgreSQL this revision
- adds a `tsvector` column to transcript segments, kept by the database itself
  (a generated column) and indexed with GIN, and the segment's token count (for BM25's
  length term): `bwv search` there matches the same words as SQLite's FTS5 index
  (revision 0002) and ranks them by the same BM25 formula. Its configuration stems
  English words like FTS5's porter tokenizer and, like FTS5, drops no stop word, so
  "no" or "not" (words that matter in a child's account) can be searched;
- widens `clip.size_bytes` to 64 bits (an `integer` there stops at 2 GiB; a long
  body-worn recording is bigger);
- applies Procrastinate's schema (the tables and functions of the ingest queue, see
  `bwv.services.queue`), so a new PostgreSQL catalogue needs no second set-up step.

On SQLite it does nothing: FTS5 already indexes the text, SQLite integers are 64-bit,
and the queue needs PostgreSQL.

Revision ID: 0011
Revises: 0009
"""

from collections.abc import Sequence
from typing import Any

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH = (
    "CREATE TEXT SEARCH DICTIONARY bwv_english_stem (TEMPLATE = snowball, Language = english)",
    "CREATE TEXT SEARCH CONFIGURATION bwv_search (COPY = simple)",
    "ALTER TEXT SEARCH CONFIGURATION bwv_search ALTER MAPPING FOR "
    "asciiword, word, asciihword, hword, hword_asciipart, hword_part WITH bwv_english_stem",
    "ALTER TABLE transcriptsegment ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('bwv_search'::regconfig, text)) STORED",
    "CREATE INDEX ix_transcriptsegment_search_vector ON transcriptsegment "
    "USING gin (search_vector)",
    # Tokens in the segment (every occurrence, as FTS5 counts a document's length for
    # its BM25 ranking); immutable because it depends on its argument alone.
    "CREATE FUNCTION bwv_tokens(tsvector) RETURNS integer LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT coalesce(sum(cardinality(positions)), 0)::integer FROM unnest($1) $$",
    "ALTER TABLE transcriptsegment ADD COLUMN search_tokens integer "
    "GENERATED ALWAYS AS (bwv_tokens(to_tsvector('bwv_search'::regconfig, text))) STORED",
    "ALTER TABLE clip ALTER COLUMN size_bytes TYPE bigint",
)
DROPS = (
    "ALTER TABLE clip ALTER COLUMN size_bytes TYPE integer",
    "DROP INDEX IF EXISTS ix_transcriptsegment_search_vector",
    "ALTER TABLE transcriptsegment DROP COLUMN IF EXISTS search_tokens",
    "DROP FUNCTION IF EXISTS bwv_tokens(tsvector)",
    "ALTER TABLE transcriptsegment DROP COLUMN IF EXISTS search_vector",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS bwv_search",
    "DROP TEXT SEARCH DICTIONARY IF EXISTS bwv_english_stem",
)
QUEUE_DROPS = (
    "DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events, "
    "procrastinate_jobs, procrastinate_workers CASCADE",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in SEARCH:
        op.execute(statement)
    from procrastinate.schema import SchemaManager

    # Through the driver's own connection: the schema is PL/pgSQL full of `%` and `:`
    # that SQLAlchemy or psycopg would otherwise read as parameters.
    driver: Any = op.get_bind().connection.driver_connection
    driver.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in (*QUEUE_DROPS, *DROPS):
        op.execute(statement)
