"""Timestamps in bulk: read without the ORM's per-value conversion, kept as naive UTC.

Linking and reporting handle a few million timestamps at force scale. SQLAlchemy's
SQLite DATETIME conversion (a Python regex per value) and aware-datetime arithmetic and
formatting (a tzinfo call per operation) were the largest costs, so the bulk loaders
select the stored text as is, parse it with the C `fromisoformat`, and the compliance
facts hold naive datetimes that are UTC by convention. Everything that shows a time
goes through `bwv.core.timeutil.iso_z` (JSON) or `as_utc` (local display), which accept
both kinds. This module and the loaders that use it (`facts`, `linking`, `parts`) are the
only place naive datetimes exist.
PostgreSQL drivers already hand back datetimes; both shapes are accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, type_coerce

EPOCH = datetime(1970, 1, 1)  # naive UTC, like the facts it is subtracted from


def raw(column: Any) -> Any:
    """`column` selected as stored (text on SQLite), with no result conversion."""
    return type_coerce(column, String())


def naive(value: str | datetime | None) -> datetime | None:
    """A stored timestamp (text or datetime) as a naive UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def epoch(value: str | datetime | None) -> float | None:
    """Seconds since 1970 for a stored or naive-UTC timestamp."""
    moment = naive(value)
    return None if moment is None else (moment - EPOCH).total_seconds()
