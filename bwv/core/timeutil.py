"""Parsing the times people and cameras write, into timezone-aware UTC.

A time without an offset is local time in the configured zone (`BWV_TIMEZONE`, default
Europe/London), so GMT and BST are both honoured; everything is stored in UTC.

Every time a person or a file gives goes through `parse_time`, so the rules for bad
times live here once: a year outside 1900..2999 (UTC) is refused, because such a time is
a typing or clock error and the far ends of the calendar cannot even be converted; a
local time skipped when the clocks go forward is refused, because it never happened; a
local time that happens twice when the clocks go back is taken as its first occurrence
(summer time) with an `AmbiguousTimeWarning` that says so, unless an offset is given.
"""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bwv.core.errors import BwvError

DEFAULT_TIMEZONE = "Europe/London"
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999


class AmbiguousTimeWarning(UserWarning):
    """A local time that happened twice (clocks going back) was taken as the first one."""


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
    """ISO 8601 (a trailing Z allowed) to aware UTC; naive times are local to `zone`.

    Raises ValueError for a time that cannot be read, is out of range or never happened
    locally; warns `AmbiguousTimeWarning` for a local time that happened twice.
    """
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty time")
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {cleaned!r}") from None
    if moment.tzinfo is None:
        moment = _local(moment, zone or local_zone(), cleaned)
    return _in_range(moment, cleaned)


def _in_range(moment: datetime, cleaned: str) -> datetime:
    """`moment` in UTC, refused when its year (in UTC) is outside the sane range."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None  # the far ends of the calendar: no UTC time exists for it
    if utc is None or not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(
            f"time {cleaned!r} is out of range; "
            f"give a time from year {EARLIEST_YEAR} to {LATEST_YEAR}"
        )
    return utc


def _local(naive: datetime, zone: tzinfo, cleaned: str) -> datetime:
    """`naive` as a local time in `zone`: refused in a gap, the first one in an overlap."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    name = getattr(zone, "key", str(zone))
    if _round_trips(first, zone) or _round_trips(second, zone):
        warnings.warn(
            f"ambiguous local time {cleaned} (it happens twice in {name} when the clocks go "
            f"back) taken as the first, {first.tzname()} ({_offset(first)}); "
            "give an offset to choose",
            AmbiguousTimeWarning,
            stacklevel=3,
        )
        return first
    raise ValueError(
        f"local time {cleaned} does not exist in {name} (the clocks go forward over it); "
        "give an offset or a time that exists"
    )


def _round_trips(moment: datetime, zone: tzinfo) -> bool:
    """Whether `moment` is a wall time that really occurs in `zone` (not in a gap)."""
    back = moment.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


def _offset(moment: datetime) -> str:
    return moment.isoformat()[-6:]


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
