"""The append-only, hash-chained audit trail (Data Protection Act 2018, s.62 logging).

Each event stores the SHA-256 of its canonical content together with the previous
event's hash, so altering, deleting or reordering any event breaks the chain at that
point. Events are written inside the caller's transaction: the action and its record
commit or roll back together. On SQLite `BEGIN IMMEDIATE` serialises writers, so two
processes can never chain onto the same predecessor.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bwv.core.models import AuditEvent, utc_now

GENESIS = "0" * 64


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


def canonical(event: AuditEvent) -> str:
    """The exact text that is hashed: every field but the hash, in a fixed order."""
    body = {
        "id": event.id,
        "occurred_at": _iso(event.occurred_at),
        "actor": event.actor,
        "action": event.action,
        "object_ids": event.object_ids,
        "outcome": event.outcome,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: AuditEvent) -> str:
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
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1)).first()
    event = AuditEvent(
        id=(last.id or 0) + 1 if last else 1,
        occurred_at=utc_now(),
        actor=actor,
        action=action,
        object_ids=",".join(str(o) for o in object_ids),
        outcome=outcome,
        details=json.dumps(details or {}, sort_keys=True, default=str, ensure_ascii=False),
        prev_hash=last.hash if last else GENESIS,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
