"""A person's finding on a clip's child voice: recorded, checked and audited in one place.

The classifier is weak evidence; an inspector who listened knows better. A review says
"child's voice heard" (with the span) or "no child's voice here", replaces any earlier
review of the clip, and the verdicts honour it (compliance.verdicts). The CLI
(`bwv review`) and the web app both call `record_review`, so the rule is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bwv.core import audit
from bwv.core.clip_ref import find_clip
from bwv.core.db import session_scope
from bwv.core.errors import BwvError
from bwv.core.models import Clip, ClipLink, VoiceReview, utc_now
from compliance.decisions import checked_reason
from compliance.verdicts import HEARD, NOT_HEARD

DECISIONS = (HEARD, NOT_HEARD)


@dataclass(frozen=True)
class ReviewResult:
    clip_id: int
    file_name: str
    decision: str
    start_s: float | None
    end_s: float | None
    previous: str | None  # the decision it replaced, if any
    incident_refs: list[str]  # incidents whose verdict it can change
    decided_at: datetime


def record_review(
    clip: str,
    decision: str,
    *,
    span: tuple[float | None, float | None],
    reason: str,
    engine: Engine,
    actor: str,
) -> ReviewResult:
    """Stores `decision` (heard or not_heard) on `clip` and audits it in one transaction."""
    if decision not in DECISIONS:
        raise BwvError(f"unknown review {decision!r}; expected heard or not_heard")
    reason = checked_reason(reason)
    with session_scope(engine) as session:
        found = find_clip(session, clip)
        start, end = checked_span(found, decision, span)
        previous = _store(session, found, decision, (start, end), reason, actor)
        result = _result(session, found, decision, (start, end), previous)
        audit.record(
            session,
            actor=actor,
            action="voice_review",
            object_ids=[f"clip:{result.clip_id}", *(f"incident:{r}" for r in result.incident_refs)],
            details={
                "decision": decision,
                "start_s": start,
                "end_s": end,
                "reason": reason,
                "previous": previous,
            },
        )
    return result


def checked_span(
    clip: Clip, decision: str, span: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """A heard child needs where: 0 <= start < end, inside the clip when its length is known."""
    start, end = span
    if decision == NOT_HEARD:
        if start is not None or end is not None:
            raise BwvError("a 'not_heard' review covers the whole clip; give no --start or --end")
        return None, None
    if start is None or end is None:
        raise BwvError("say where the child is heard: --start SECONDS and --end SECONDS")
    if not 0 <= start < end:
        raise BwvError(f"the span {start:g}-{end:g} s is empty or negative; need 0 <= start < end")
    if clip.duration_s is not None and end > clip.duration_s + 0.5:
        raise BwvError(
            f"the span ends at {end:g} s but clip {clip.id} is {clip.duration_s:.1f} s long"
        )
    return start, end


def _store(
    session: Session,
    clip: Clip,
    decision: str,
    span: tuple[float | None, float | None],
    reason: str,
    actor: str,
) -> str | None:
    query = select(VoiceReview).where(col(VoiceReview.clip_id) == clip.id)
    review = session.exec(query).first()
    previous = review.decision if review else None
    assert clip.id is not None
    review = review or VoiceReview(clip_id=clip.id, decision=decision, reason=reason, actor=actor)
    review.decision, review.reason, review.actor = decision, reason, actor
    review.start_s, review.end_s = span
    review.decided_at = utc_now()
    session.add(review)
    session.flush()
    return previous


def _result(
    session: Session,
    clip: Clip,
    decision: str,
    span: tuple[float | None, float | None],
    previous: str | None,
) -> ReviewResult:
    refs = select(ClipLink.incident_ref).where(col(ClipLink.clip_id) == clip.id)
    assert clip.id is not None
    return ReviewResult(
        clip_id=clip.id,
        file_name=clip.file_name,
        decision=decision,
        start_s=span[0],
        end_s=span[1],
        previous=previous,
        incident_refs=sorted(set(session.exec(refs).all())),
        decided_at=utc_now(),
    )
