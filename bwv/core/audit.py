"""The append-only, hash-chained audit trail (Data Protection Act 2018, s.62 logging).

Each event stores the SHA-256 of its canonical content together with the previous
event's hash, so altering, deleting or reordering any event breaks the chain at that
point. Events are written inside the caller's transaction: the action and its record
commit or roll back together. On SQLite `BEGIN IMMEDIATE` serialises writers; on
PostgreSQL an advisory lock held to the end of the transaction does, so two processes
(or two machines) can never chain onto the same predecessor.

An action that changes nothing but must be logged (a page view, a playback) has no
transaction of its own to join: `record_committed` appends its event and returns only
once it is committed. The events of threads that ask at the same moment share one
transaction (a group commit, still one chained event each), so twenty people viewing
pages at once wait for one write, not for twenty in turn.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlmodel import Session, select

from bwv.core.db import advisory_lock, write_connection
from bwv.core.errors import CatalogueError
from bwv.core.models import AuditEvent, utc_now

GENESIS = "0" * 64
CHAIN_LOCK = "bwv audit chain"  # every writer of the chain takes it (PostgreSQL)
_HASHED = ("id", "occurred_at", "actor", "action", "object_ids", "outcome", "details", "prev_hash")


def resolve_actor(actor: str | None = None) -> str:
    """`--actor`, else `BWV_ACTOR`, else the operating-system user."""
    if actor:
        return actor
    if os.environ.get("BWV_ACTOR"):
        return os.environ["BWV_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def canonical(event: AuditEvent | dict[str, Any]) -> str:
    """The exact text that is hashed: every field but the hash, in a fixed order."""
    row = event if isinstance(event, dict) else {name: getattr(event, name) for name in _HASHED}
    body = {
        "id": row["id"],
        "occurred_at": _iso(row["occurred_at"]),
        "actor": row["actor"],
        "action": row["action"],
        "object_ids": row["object_ids"],
        "outcome": row["outcome"],
        "details": row["details"],
        "prev_hash": row["prev_hash"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: AuditEvent | dict[str, Any]) -> str:
    return hashlib.sha256(canonical(event).encode("utf-8")).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_ids: list[str] | tuple[str, ...] = (),
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends one event to the chain inside the caller's transaction."""
    advisory_lock(session, CHAIN_LOCK)
    last_id, last_hash = _last(session)
    event = AuditEvent(**_chained(last_id, last_hash, _Wanted(actor, action, object_ids,
                                                              outcome, details)))  # fmt: skip
    session.add(event)
    session.flush()
    return event


@dataclass
class _Wanted:
    """An event waiting to be chained; `done` and `error` are set by whoever writes it."""

    actor: str
    action: str
    object_ids: list[str] | tuple[str, ...]
    outcome: str
    details: dict[str, Any] | None
    done: bool = False
    error: BaseException | None = None


_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE)
_LAST = select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)


def _last(session: Session) -> tuple[int, str]:
    """The id and hash the next event chains onto (two columns, not a whole event)."""
    found = session.execute(_LAST).first()  # after a flush of what the caller added
    return (found[0] or 0, found[1]) if found else (0, GENESIS)


def _chained(last_id: int, last_hash: str, wanted: _Wanted) -> dict[str, Any]:
    """The next event's columns, hash included (a plain dict: no model to validate)."""
    event = {
        "id": last_id + 1,
        "occurred_at": utc_now(),
        "actor": wanted.actor,
        "action": wanted.action,
        "object_ids": ",".join(str(o) for o in wanted.object_ids),
        "outcome": wanted.outcome,
        "details": json.dumps(wanted.details or {}, sort_keys=True, default=str,
                              ensure_ascii=False),
        "prev_hash": last_hash,
    }  # fmt: skip
    event["hash"] = event_hash(event)
    return event


_waiting: dict[int, list[_Wanted]] = {}  # id(engine) -> events not yet written
_waiting_lock = threading.Lock()
_writing = threading.Lock()  # one group commit at a time in this process


def record_committed(
    engine: Engine,
    *,
    actor: str,
    action: str,
    object_ids: list[str] | tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
) -> None:
    """Appends one event in a transaction of its own and returns once it is committed.

    The caller joins the queue, then takes its turn to write: whoever holds the turn
    writes every event queued so far in one transaction, so a caller may find its own
    already committed when its turn comes. A failed write fails every caller in it:
    no view is shown unaudited. Never called inside a transaction (it opens its own).
    """
    wanted = _Wanted(actor, action, object_ids, "ok", details)
    with _waiting_lock:
        _waiting.setdefault(id(engine), []).append(wanted)
    with _writing:
        if not wanted.done:
            _write_waiting(engine)
    if wanted.error is not None or not wanted.done:
        raise CatalogueError(f"the audit event was not written: {wanted.error}")


def _write_waiting(engine: Engine) -> None:
    """Writes the queued events in one transaction, chained in queue order."""
    with _waiting_lock:
        batch = _waiting.pop(id(engine), [])
    try:
        with write_connection(engine) as connection:
            advisory_lock(connection, CHAIN_LOCK)
            found = connection.execute(_LAST).first()
            last_id, last_hash = (found[0] or 0, found[1]) if found else (0, GENESIS)
            rows = []
            for wanted in batch:
                rows.append(_chained(last_id, last_hash, wanted))
                last_id, last_hash = last_id + 1, rows[-1]["hash"]
            connection.execute(_INSERT, rows)
    except BaseException as exc:  # every caller in the batch hears of it
        for wanted in batch:
            wanted.error = exc
        if not isinstance(exc, Exception):
            raise
    finally:
        for wanted in batch:
            wanted.done = True


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
