"""Alembic environment: runs on the connection `bwv.db` hands over, never on its own engine."""

from alembic import context
from sqlmodel import SQLModel

import bwv.core.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "bwv migrations run through bwv.core.db.migrate(), which passes a connection"
    )

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
