"""`bwv child-record`: what the child said at one incident, as a record for partner agencies.

Child protection is a partnership: social care and health need what the child said, not
only whether the police camera caught it. The record brings together the incident and
the officers present (compliance), each linked clip's segments attributed to the child
by `bwv.core.child_speech` at the policy's threshold (the catalogue), the people's link
decisions, and the verdict with its reasons. Handing it over is a disclosure, so it is
one audited action with its actor and reason, recorded only once the record is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwv.core import audit
from bwv.core.child_speech import decision_probability, is_child
from bwv.core.db import session_scope
from bwv.core.errors import BwvError
from bwv.core.models import Clip, LinkDecision, TranscriptSegment, utc_now
from bwv.core.timeutil import as_utc, checked_zone
from compliance.decisions import checked_reason
from compliance.facts import LinkFacts, ReviewFacts
from compliance.policy import Policy, load_policy
from compliance.render import describe_reason
from compliance.report import IncidentDetail, judge_incident
from compliance.verdicts import (
    HEARD,
    NOT_HEARD,
    distinct_links,
    incident_reason,
    reviewed_as,
)

FORMATS = ("md", "html", "json")

# Why a record holds no child speech, in the words the issue asks for, by verdict reason.
NO_CHILD_SPEECH = {
    "NO_FOOTAGE": ("no footage", "No footage: no clip is linked to this incident."),
    "FOOTAGE_UNREADABLE": (
        "needs review",
        "Needs review: every linked clip is unreadable, so nothing could be heard.",
    ),
    "NO_AUDIO": ("no audio", "No audio: the linked footage has no usable sound."),
    "NO_SPEECH": ("not detected", "Not detected: no speech was heard in the linked footage."),
}
NOT_DETECTED = (
    "not detected",
    "Not detected: speech was heard, but none of it was attributed to a child at the "
    "policy's threshold. A person should listen to the footage before relying on this.",
)
NOT_HEARD_BY_A_PERSON = (
    "not heard",
    "Not heard: a person listened to every linked clip with sound and heard no child's "
    "voice (see the reviews under Human decisions).",
)
UNTRANSCRIBED = (
    "needs review",
    "Needs review: linked footage with sound was not transcribed, so the child's words "
    "are unknown. A person should listen to it.",
)


@dataclass(frozen=True)
class ChildSegment:
    start_s: float  # seconds into the clip
    end_s: float
    started_at: datetime | None  # wall-clock time (aware UTC), when the clip's start is known
    ended_at: datetime | None
    text: str
    probability: float | None  # the one child speech is judged on (the speaker's pooled)
    segment_probability: float | None
    speaker: int | None
    source: str = "classifier"  # or "review": inside the span where a person heard the child


@dataclass(frozen=True)
class RecordClip:
    clip_id: int
    file_name: str
    officer_id: str | None
    started_at: datetime | None
    status: str
    audio_state: str | None
    transcribed: bool
    segments: list[ChildSegment] = field(default_factory=list)
    review: ReviewFacts | None = None


@dataclass(frozen=True)
class ChildRecord:
    detail: IncidentDetail
    clips: list[RecordClip]
    decisions: list[Any]  # LinkDecision rows
    marking: str
    threshold: float
    generated_at: datetime
    actor: str
    reason: str
    no_child_speech: tuple[str, str] | None  # (kind, sentence) when no child speech at all
    heard: list[tuple[int, ReviewFacts]] = field(default_factory=list)  # heard by a person

    @property
    def segment_count(self) -> int:
        return sum(len(clip.segments) for clip in self.clips)


def write_child_record(
    incident_ref: str,
    *,
    engine: Engine,
    actor: str,
    reason: str,
    fmt: str = "md",
    out: Path | None = None,
    sent_to: str = "stdout",
) -> tuple[ChildRecord, bytes]:
    """Builds and renders the record, writes it to `out` if given, and audits the disclosure.

    The audit event is added in the transaction that read the record, after the file is
    written: a record that could not be written was not disclosed and is not logged.
    `sent_to` names where a record not written to a file goes (stdout, a web download).
    """
    from bwv.services.record_render import render_record

    if fmt not in FORMATS:
        raise BwvError(f"unknown record format {fmt!r}; expected one of {', '.join(FORMATS)}")
    reason = checked_reason(reason, "disclosure")
    checked_zone()
    policy = load_policy()
    with session_scope(engine) as session:
        record = build_child_record(session, incident_ref, policy, actor=actor, reason=reason)
        rendered = render_record(record, fmt)
        if out is not None:
            _write(session, rendered, out)
        _audit(session, record, fmt, str(out) if out is not None else sent_to)
    return record, rendered


def build_child_record(
    session: Session, incident_ref: str, policy: Policy, *, actor: str, reason: str
) -> ChildRecord:
    """The record, read in the caller's transaction (not audited here)."""
    detail = judge_incident(session, incident_ref, policy)
    return record_of(session, detail, policy, actor=actor, reason=reason)


def record_of(
    session: Session, detail: IncidentDetail, policy: Policy, *, actor: str, reason: str
) -> ChildRecord:
    """The record of an incident already judged (the web's incident page judges it once)."""
    incident_ref = detail.verdict.incident.incident_ref
    threshold = policy.child_probability_threshold
    clips = [
        _record_clip(session, link, threshold)
        for link in distinct_links(detail.verdict.evidence.links)
    ]
    heard = _heard(clips)
    return ChildRecord(
        detail=detail,
        clips=clips,
        decisions=_decisions(session, incident_ref),
        marking=policy.protective_marking,
        threshold=threshold,
        generated_at=utc_now(),
        actor=actor,
        reason=reason,
        no_child_speech=None
        if heard or any(c.segments for c in clips)
        else _why_none(detail, clips),
        heard=heard,
    )


def _heard(clips: list[RecordClip]) -> list[tuple[int, ReviewFacts]]:
    """Readable clips where a person heard the child: capture settled, as in the verdicts."""
    return [
        (c.clip_id, c.review)
        for c in clips
        if c.review is not None and c.status == "ingested" and c.review.decision == HEARD
    ]


_C, _S = Clip.__table__.c, TranscriptSegment.__table__.c  # type: ignore[attr-defined]
# Built once: the web's incident page reads every linked clip on each request.
_CLIP = sa_select(
    _C.id, _C.file_name, _C.started_at, _C.status, _C.audio_state, _C.transcribed
).where(_C.id == bindparam("clip_id"))
_SEGMENTS = (
    sa_select(TranscriptSegment.__table__)  # type: ignore[attr-defined]
    .where(_S.clip_id == bindparam("clip_id"))
    .order_by(_S.start_s, _S.id)
)


def _record_clip(session: Session, link: LinkFacts, threshold: float) -> RecordClip:
    run, key = session.connection().execute, {"clip_id": link.clip.clip_id}
    clip = run(_CLIP, key).one()
    review = link.clip.review
    segments = [
        _segment(s, clip.started_at, source)
        for s in run(_SEGMENTS, key)
        if (source := _attributed(s, review, threshold)) is not None
    ]
    return RecordClip(
        clip.id,
        clip.file_name,
        link.officer_id,
        clip.started_at,
        clip.status,
        clip.audio_state,
        clip.transcribed,
        segments,
        review,
    )


def _attributed(segment: Any, review: ReviewFacts | None, threshold: float) -> str | None:
    """Why a segment is the child's ("review" or "classifier"), or None. A person's review
    overrides the classifier as in the verdicts: not heard drops the clip's child speech,
    heard adds the words inside the span the person heard the child in."""
    if review is not None and review.decision == NOT_HEARD:
        return None
    if review is not None and _overlaps(segment, review.start_s, review.end_s):
        return "review"
    return "classifier" if is_child(segment, threshold) else None


def _overlaps(segment: Any, start: float | None, end: float | None) -> bool:
    if start is None or end is None:
        return False
    return segment.start_s < end and segment.end_s > start


def _segment(segment: Any, clip_start: datetime | None, source: str) -> ChildSegment:
    def at(offset: float) -> datetime | None:
        return None if clip_start is None else as_utc(clip_start) + timedelta(seconds=offset)

    return ChildSegment(
        start_s=segment.start_s,
        end_s=segment.end_s,
        started_at=at(segment.start_s),
        ended_at=at(segment.end_s),
        text=segment.text,
        probability=decision_probability(segment),
        segment_probability=segment.child_probability,
        speaker=segment.speaker,
        source=source,
    )


_D = LinkDecision.__table__.c  # type: ignore[attr-defined]
_DECISIONS = (
    sa_select(LinkDecision.__table__)  # type: ignore[attr-defined]
    .where(_D.incident_ref == bindparam("ref"))
    .order_by(_D.decided_at, _D.id)
)


def _decisions(session: Session, incident_ref: str) -> list[Any]:
    """The incident's link decisions as rows, read by attribute like `LinkDecision`."""
    return list(session.connection().execute(_DECISIONS, {"ref": incident_ref}).all())


def _why_none(detail: IncidentDetail, clips: list[RecordClip]) -> tuple[str, str]:
    """Why there is no child speech, by the verdicts' own rule (judged here for incidents
    that are not applicable too), honouring people's reviews as the verdicts do."""
    reason = incident_reason(detail.verdict.evidence, detail.policy)
    if reason is not None and reason.code in NO_CHILD_SPEECH:
        kind, sentence = NO_CHILD_SPEECH[reason.code]
        return kind, f"{sentence} {describe_reason(reason)}"
    audible = [c for c in clips if c.status == "ingested" and c.audio_state == "present"]
    unheard = [c for c in audible if not reviewed_as(c, NOT_HEARD)]
    if audible and not unheard:
        return NOT_HEARD_BY_A_PERSON
    if any(not c.transcribed for c in unheard):
        return UNTRANSCRIBED
    return NOT_DETECTED


def _write(session: Session, rendered: bytes, out: Path) -> None:
    """Writes the record; never over a catalogued original (evidence is never modified)."""
    target = str(out.resolve())
    if session.exec(select(Clip.id).where(col(Clip.path) == target)).first() is not None:
        raise BwvError(f"{out} is a catalogued original; write the record somewhere else")
    try:
        with out.open("wb") as handle:
            handle.write(rendered)
    except OSError as exc:
        raise BwvError(f"cannot write the record to {out}: {exc.strerror}") from None


def _audit(session: Session, record: ChildRecord, fmt: str, sent_to: str) -> None:
    incident = record.detail.verdict.incident
    audit.record(
        session,
        actor=record.actor,
        action="child_record",
        object_ids=[f"incident:{incident.incident_ref}"]
        + [f"clip:{clip.clip_id}" for clip in record.clips],
        details={
            "reason": record.reason,
            "format": fmt,
            "out": sent_to,
            "child_segments": record.segment_count,
            "marking": record.marking,
            "verdict": record.detail.verdict.verdict,
        },
    )
