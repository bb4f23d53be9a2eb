"""Parsing the times people and cameras write, into timezone-aware UTC.

A time without an offset is local time in the configured zone (`BWV_TIMEZONE`, default
Europe/London), so GMT and BST are both honoured; everything is stored in UTC.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bwv.core.errors import BwvError

DEFAULT_TIMEZONE = "Europe/London"


def local_zone() -> ZoneInfo:
    name = os.environ.get("BWV_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} in BWV_TIMEZONE") from exc


def checked_zone() -> ZoneInfo:
    """The configured local zone, or a clear error when `BWV_TIMEZONE` names none."""
    try:
        return local_zone()
    except ValueError as exc:
        raise BwvError(str(exc)) from None


def parse_time(text: str, zone: tzinfo | None = None) -> datetime:
    """ISO 8601 (a trailing Z allowed) to aware UTC; naive times are local to `zone`."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty time")
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {cleaned!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or local_zone())
    return moment.astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """Treats a naive datetime as UTC (as SQLite hands back) and converts aware ones."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a trailing Z, the form every JSON output uses (naive means UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.isoformat() + "Z"
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_time(value: object) -> str:
    """`default=` for `json.dumps`: datetimes as `iso_z`, anything else refused."""
    if isinstance(value, datetime):
        return iso_z(value)  # type: ignore[return-value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
