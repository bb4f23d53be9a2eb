"""Checking the hash-chained audit trail and exporting it for disclosure.

`verify_chain` recomputes every event's hash from its canonical content and follows the
`prev_hash` links from the genesis value, so it can name the first event that was
altered, deleted, reordered or re-hashed. A chain rewritten wholesale from some event
onwards is self-consistent; only a hash noted outside the catalogue (an anchor, such as
the head hash printed by `bwv audit verify` or written into every disclosure export)
can expose that, so `verify_chain` accepts one.

Events are read in id-ordered chunks, each in its own short transaction: on SQLite every
transaction takes the write lock, and walking a long trail in one would stall ingest.
The trail is append-only, so events appended between chunks cannot change earlier ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from bwv.core.audit import GENESIS, canonical, event_hash
from bwv.core.csvsafe import write_csv
from bwv.core.db import session_scope
from bwv.core.errors import BwvError
from bwv.core.models import AuditEvent

CHUNK = 1000
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Cells starting with these make spreadsheets evaluate a formula (OWASP CSV injection),
# full-width forms included because some spreadsheet programs normalise them.
CSV_COLUMNS = (
    "id",
    "occurred_at",
    "actor",
    "action",
    "object_ids",
    "outcome",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class Unreadable:
    """An event row the database holds but that cannot be loaded (a field was corrupted)."""

    id: int
    reason: str


@dataclass(frozen=True)
class ChainProblem:
    event_id: int
    kind: str  # altered | broken | deleted | reordered | unreadable | anchor
    message: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    head_id: int | None
    head_hash: str | None
    problem: ChainProblem | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LogFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    object_id: str | None = None


def iter_events(engine: Engine, *, where: Iterable[Any] = ()) -> Iterator[AuditEvent | Unreadable]:
    """Every event in id order, a chunk per short transaction."""
    conditions = list(where)
    last_id = 0
    while True:
        with session_scope(engine) as session:
            query = select(AuditEvent.id).where(col(AuditEvent.id) > last_id, *conditions)
            ids = list(session.exec(query.order_by(col(AuditEvent.id)).limit(CHUNK)).all())
            if not ids:
                return
            chunk = _load_chunk(session, [i for i in ids if i is not None])
        yield from chunk
        last_id = ids[-1] or last_id


def _load_chunk(session: Any, ids: list[int]) -> list[AuditEvent | Unreadable]:
    query = select(AuditEvent).where(col(AuditEvent.id).in_(ids)).order_by(col(AuditEvent.id))
    try:
        return list(session.exec(query).all())
    except (ValueError, TypeError, OverflowError):
        # One corrupted field spoils the whole chunk; load row by row to name the culprit.
        return [_load_one(session, event_id) for event_id in ids]


def _load_one(session: Any, event_id: int) -> AuditEvent | Unreadable:
    try:
        event = session.get(AuditEvent, event_id)
    except (ValueError, TypeError, OverflowError) as exc:
        return Unreadable(event_id, str(exc))
    return event if event is not None else Unreadable(event_id, "row vanished while reading")


def check_anchor(anchor: str) -> str:
    """An anchor as stored (lower-case hex); anything but a SHA-256 hash is refused.

    A mistyped anchor would otherwise read as "the trail was rewritten", a grave claim.
    """
    wanted = anchor.strip().lower()
    if not SHA256_HEX.fullmatch(wanted):
        shown = anchor if len(anchor) <= 80 else f"{anchor[:80]}..."
        raise BwvError(f"--anchor must be a SHA-256 hash (64 hex digits), not {shown!r}")
    return wanted


def chain_details(report: ChainReport, anchor: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"events": report.events, "head_hash": report.head_hash}
    if anchor:
        details["anchor"] = anchor
    if report.problem:
        details["problem"] = {"event_id": report.problem.event_id, "kind": report.problem.kind}
    return details


def walk_chain(engine: Engine, *, anchor: str | None = None) -> ChainReport:
    """The chain check without recording anything (also used inside exports)."""
    previous: AuditEvent | None = None
    anchored = anchor is None
    warnings: list[str] = []
    count = 0
    for event in iter_events(engine):
        problem = check_link(engine, event, previous)
        if problem:
            return _broken(count, previous, problem, warnings)
        assert isinstance(event, AuditEvent)
        anchored = anchored or event.hash == anchor
        warnings.extend(_clock_warning(event, previous))
        previous, count = event, count + 1
    if not anchored:
        return _broken(count, previous, _anchor_problem(str(anchor), previous), warnings)
    return ChainReport(True, count, _id(previous), _hash(previous), None, warnings)


def _broken(
    count: int, previous: AuditEvent | None, problem: ChainProblem, warnings: list[str]
) -> ChainReport:
    return ChainReport(False, count, _id(previous), _hash(previous), problem, warnings)


def _id(event: AuditEvent | None) -> int | None:
    return event.id if event else None


def _hash(event: AuditEvent | None) -> str | None:
    return event.hash if event else None


def check_link(
    engine: Engine, event: AuditEvent | Unreadable, previous: AuditEvent | None
) -> ChainProblem | None:
    """The first thing wrong with `event` as the successor of `previous`, if anything."""
    expected_id = (previous.id or 0) + 1 if previous else 1
    if isinstance(event, Unreadable):
        return ChainProblem(
            event.id, "unreadable", f"event {event.id} cannot be read ({event.reason})"
        )
    assert event.id is not None
    if event.id != expected_id:
        return _gap_problem(expected_id, event.id)
    if event_hash(event) != event.hash:
        return ChainProblem(
            event.id,
            "altered",
            f"event {event.id} was altered: its content no longer matches its stored hash",
        )
    if event.prev_hash != (previous.hash if previous else GENESIS):
        return _link_problem(engine, event, previous)
    return None


def _gap_problem(expected_id: int, found_id: int) -> ChainProblem:
    missing = str(expected_id) if found_id == expected_id + 1 else f"{expected_id}-{found_id - 1}"
    return ChainProblem(
        expected_id,
        "deleted",
        f"event {missing} is missing: deleted before event {found_id}",
    )


def _link_problem(engine: Engine, event: AuditEvent, previous: AuditEvent | None) -> ChainProblem:
    assert event.id is not None
    other = _event_with_hash(engine, event.prev_hash)
    if other is not None:
        return ChainProblem(
            event.id,
            "reordered",
            f"event {event.id} follows event {other} in the chain, not event {event.id - 1}: "
            "events were reordered",
        )
    if previous is None:
        return ChainProblem(
            event.id,
            "deleted",
            f"event {event.id} does not start the chain: the events before it were deleted "
            "and the rest renumbered",
        )
    return ChainProblem(
        event.id - 1,
        "broken",
        f"the chain breaks between events {event.id - 1} and {event.id}: event {event.id - 1} "
        "was altered and its hash recomputed, or events after it were deleted and the rest "
        "renumbered",
    )


def _event_with_hash(engine: Engine, wanted: str) -> int | None:
    with session_scope(engine) as session:
        query = select(AuditEvent.id).where(AuditEvent.hash == wanted)
        return session.exec(query).first()


def _anchor_problem(anchor: str, previous: AuditEvent | None) -> ChainProblem:
    return ChainProblem(
        _id(previous) or 0,
        "anchor",
        f"no event has the anchor hash {anchor}: the trail was rewritten or cut short "
        "after that hash was noted",
    )


def _clock_warning(event: AuditEvent, previous: AuditEvent | None) -> list[str]:
    # Not a break: a clock stepped back by time synchronisation does the same.
    if previous is None or event.occurred_at >= previous.occurred_at:
        return []
    return [f"event {event.id} is dated before event {previous.id} (clock change or reordering)"]


def matches_object(object_ids: str, wanted: str) -> bool:
    """`clip:12` matches only itself; a bare `12` matches any kind of object with id 12."""
    items = object_ids.split(",")
    return any(item == wanted or item.split(":", 1)[-1] == wanted for item in items)


def select_events(engine: Engine, log_filter: LogFilter) -> list[AuditEvent]:
    """The events the filter selects, in chain order; refuses if a row cannot be read."""
    events: list[AuditEvent] = []
    for event in iter_events(engine, where=_conditions(log_filter)):
        if isinstance(event, Unreadable):
            raise BwvError(f"audit event {event.id} cannot be read; run `bwv audit verify`")
        if log_filter.object_id is None or matches_object(event.object_ids, log_filter.object_id):
            events.append(event)
    return events


def _conditions(log_filter: LogFilter) -> list[Any]:
    conditions: list[Any] = []
    if log_filter.since is not None:
        conditions.append(col(AuditEvent.occurred_at) >= log_filter.since)
    if log_filter.until is not None:
        conditions.append(col(AuditEvent.occurred_at) <= log_filter.until)
    if log_filter.actor is not None:
        conditions.append(col(AuditEvent.actor) == log_filter.actor)
    return conditions


def event_record(event: AuditEvent) -> dict[str, Any]:
    """An event as exported: exactly the hashed fields plus the hash, so anyone can re-check.

    `hash == sha256(json.dumps(record without "hash", sort_keys=True,
    separators=(",", ":"), ensure_ascii=False))` holds for every exported event.
    """
    return {**json.loads(canonical(event)), "hash": event.hash}


def render_json(events: list[AuditEvent]) -> str:
    body = {"count": len(events), "events": [event_record(e) for e in events]}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def render_csv(events: list[AuditEvent]) -> str:
    rows = ([event_record(e)[column] for column in CSV_COLUMNS] for e in events)
    return write_csv([CSV_COLUMNS, *rows])


def filter_details(log_filter: LogFilter) -> dict[str, Any]:
    values = {
        "since": log_filter.since.isoformat() if log_filter.since else None,
        "until": log_filter.until.isoformat() if log_filter.until else None,
        "actor": log_filter.actor,
        "object": log_filter.object_id,
    }
    return {key: value for key, value in values.items() if value is not None}
