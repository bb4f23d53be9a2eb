"""A person's decision that a clip does, or does not, belong to an incident.

Automatic linking is a best guess from attendance times; the officer in the case or an
inspector may know better. Each decision is stored with who made it and why, replaces
any earlier decision on the same pair, survives every later recomputation, and is
written to the audit trail in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bwv.core.clip_ref import find_clip
from bwv.core.errors import BwvError, NotFound
from bwv.core.models import ClipLink, Incident, LinkDecision, utc_now
from compliance.linking import LinkSummary, recompute_links

ACTIONS = ("link", "unlink")
MAX_REASON = 1000


@dataclass(frozen=True)
class DecisionResult:
    action: str
    clip_id: int
    file_name: str
    incident_ref: str
    reason: str
    was_linked: bool
    now_linked: bool
    other_links: list[tuple[str, str]]  # (incident_ref, source) of the clip's other links
    links: LinkSummary


def decide_link(
    session: Session, clip: str, incident_ref: str, *, action: str, reason: str, actor: str
) -> DecisionResult:
    """Records `action` (link or unlink) for the pair, by `actor`, and recomputes links."""
    if action not in ACTIONS:
        raise BwvError(f"unknown decision {action!r}; expected link or unlink")
    reason = checked_reason(reason)
    found = find_clip(session, clip)
    assert found.id is not None
    if session.get(Incident, incident_ref) is None:
        raise NotFound(f"no incident {incident_ref!r} in the catalogue")
    was_linked = _linked(session, found.id, incident_ref)
    _store_decision(session, found.id, incident_ref, action, reason, actor)
    links = recompute_links(session)
    return DecisionResult(
        action=action,
        clip_id=found.id,
        file_name=found.file_name,
        incident_ref=incident_ref,
        reason=reason,
        was_linked=was_linked,
        now_linked=_linked(session, found.id, incident_ref),
        other_links=_other_links(session, found.id, incident_ref),
        links=links,
    )


def checked_reason(reason: str, what: str = "decision") -> str:
    """A reason fit for the audit trail: given, and of sensible length."""
    cleaned = reason.strip()
    if not cleaned:
        raise BwvError(f"give a reason for the {what} (--reason TEXT); it goes in the audit trail")
    if len(cleaned) > MAX_REASON:
        raise BwvError(f"the reason is too long ({len(cleaned)} characters; at most {MAX_REASON})")
    return cleaned


def _linked(session: Session, clip_id: int, incident_ref: str) -> bool:
    query = select(ClipLink.id).where(
        col(ClipLink.clip_id) == clip_id, col(ClipLink.incident_ref) == incident_ref
    )
    return session.exec(query).first() is not None


def _other_links(session: Session, clip_id: int, incident_ref: str) -> list[tuple[str, str]]:
    query = select(ClipLink.incident_ref, ClipLink.source).where(
        col(ClipLink.clip_id) == clip_id, col(ClipLink.incident_ref) != incident_ref
    )
    return [(ref, source) for ref, source in session.exec(query)]


def _store_decision(
    session: Session, clip_id: int, incident_ref: str, action: str, reason: str, actor: str
) -> None:
    query = select(LinkDecision).where(
        col(LinkDecision.clip_id) == clip_id, col(LinkDecision.incident_ref) == incident_ref
    )
    decision = session.exec(query).first() or LinkDecision(
        clip_id=clip_id, incident_ref=incident_ref, action=action, actor=actor
    )
    decision.action = action
    decision.actor = actor
    decision.reason = reason
    decision.decided_at = utc_now()
    session.add(decision)
    session.flush()
