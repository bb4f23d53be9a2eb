"""Loading what the verdicts are judged on: incidents, attendance, linked clips, cameras.

Reports cover up to hundreds of thousands of incidents, so everything is fetched with a
handful of set-based queries (one per table, narrowed to the period's incidents by a
subquery) and grouped in memory, never one query per incident. The result is plain
slotted dataclasses, so the verdict rules stay pure functions tests can feed directly.
Every datetime here is naive UTC (see `rawtime`): fast to compare, subtract and format.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlmodel import Session

from bwv.core.child_speech import (
    child_seconds_sql,
    other_voice_first_sql,
    other_voice_seconds_sql,
    voice_figures_lateral,
)
from bwv.core.models import (
    Assignment,
    Attendance,
    Clip,
    ClipLink,
    Incident,
    Officer,
    VoiceReview,
)
from compliance.linking import AssignmentIndex, load_assignments
from compliance.policy import Policy
from compliance.rawtime import naive, raw


@dataclass(frozen=True)
class Period:
    """Incidents reported in [since, until); either end may be open."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(slots=True)
class IncidentFacts:
    incident_ref: str
    type: str
    reported_at: datetime
    location: str
    child_contact: bool
    child_ages: str
    notes: str
    priority: str = ""  # '' when not given: held to the policy's default arrival target


@dataclass(slots=True)
class OfficerFacts:
    officer_id: str
    name: str
    team: str
    station: str


@dataclass(slots=True)
class AttendanceFacts:
    officer_id: str
    arrived_at: datetime
    left_at: datetime


@dataclass(slots=True)
class ReviewFacts:
    """A person's finding on a clip's child voice (heard or not_heard), who, when, why."""

    decision: str
    start_s: float | None
    end_s: float | None
    reason: str
    actor: str
    decided_at: datetime


@dataclass(slots=True)
class ClipFacts:
    clip_id: int
    file_name: str
    status: str
    failure_reason: str | None
    device_serial: str | None
    started_at: datetime | None
    ended_at: datetime | None  # None when unreadable and of unknown length
    audio_state: str | None
    speech_seconds: float
    child_speech_seconds: float  # the classifier's, at the policy's threshold
    # Speech by someone other than the camera's wearer, and where in the clip it starts.
    other_voice_seconds: float = 0.0
    other_voice_first_s: float | None = None
    review: ReviewFacts | None = None

    @property
    def readable(self) -> bool:
        return self.status == "ingested"


@dataclass(slots=True)
class LinkFacts:
    clip: ClipFacts
    officer_id: str | None
    overlap_s: float
    ambiguous: bool
    source: str


@dataclass(slots=True)
class IncidentEvidence:
    incident: IncidentFacts
    attendance: list[AttendanceFacts] = field(default_factory=list)
    links: list[LinkFacts] = field(default_factory=list)


@dataclass(frozen=True)
class UnassignedClip:
    clip_id: int
    file_name: str
    device_serial: str | None
    started_at: datetime | None


@dataclass(frozen=True)
class Evidence:
    incidents: list[IncidentEvidence]
    officers: dict[str, OfficerFacts]
    cameras: AssignmentIndex


def load_evidence(
    session: Session, *, policy: Policy, period: Period, refs: list[str] | None = None
) -> Evidence:
    """Every incident in `period` (or named in `refs`) with its attendance and links."""
    conditions = _chosen(period, refs)
    chosen = _chosen_refs(conditions)
    incidents = _incidents(session, conditions)
    by_ref = {facts.incident_ref: IncidentEvidence(facts) for facts in incidents}
    for ref, attendance in _attendance(session, chosen):
        by_ref[ref].attendance.append(attendance)
    for ref, link in _links(session, chosen, policy):
        by_ref[ref].links.append(link)
    # Sorted here rather than in SQL: per-incident lists are short, a global sort is not.
    for item in by_ref.values():
        if len(item.attendance) > 1:
            item.attendance.sort(key=lambda a: (a.arrived_at, a.officer_id))
        if len(item.links) > 1:
            item.links.sort(key=_link_order)
    # Named incidents need only their own officers and cameras, not the whole force's.
    attending = _attending(by_ref) if refs is not None else None
    return Evidence(
        incidents=list(by_ref.values()),
        officers=load_officers(session, attending),
        cameras=load_assignments(session, attending),
    )


def _attending(by_ref: dict[str, IncidentEvidence]) -> set[str]:
    return {a.officer_id for item in by_ref.values() for a in item.attendance}


def _link_order(link: LinkFacts) -> tuple[datetime, int]:
    return (link.clip.started_at or datetime.min, link.clip.clip_id)


def _chosen(period: Period, refs: list[str] | None) -> list[ColumnElement[bool]]:
    """The conditions on the incident table that choose the incidents (none: every one)."""
    c = Incident.__table__.c  # type: ignore[attr-defined]
    conditions: list[ColumnElement[bool]] = []
    if refs is not None:
        conditions.append(c.incident_ref.in_(refs))
    if period.since is not None:
        conditions.append(c.reported_at >= period.since)
    if period.until is not None:
        conditions.append(c.reported_at < period.until)
    return conditions


def _chosen_refs(conditions: list[ColumnElement[bool]]) -> Any:
    """A subquery of the chosen incidents' refs, or None when every incident is chosen."""
    c = Incident.__table__.c  # type: ignore[attr-defined]
    return select(c.incident_ref).where(*conditions) if conditions else None


def _only(query: Any, column: Any, chosen: Any) -> Any:
    return query if chosen is None else query.where(column.in_(chosen))


def _incidents(session: Session, conditions: list[ColumnElement[bool]]) -> list[IncidentFacts]:
    c = Incident.__table__.c  # type: ignore[attr-defined]
    query = select(
        c.incident_ref,
        c.type,
        raw(c.reported_at),
        c.location,
        c.child_contact,
        c.child_ages,
        c.notes,
        c.priority,
    )
    # The conditions themselves, not `incident_ref IN (the same rows)`: PostgreSQL ran
    # that as a scan of every incident hashed against the chosen ones.
    rows = session.execute(query.where(*conditions)).all()
    return [
        IncidentFacts(
            ref,
            kind,
            _naive(reported),
            location or "",
            bool(child),
            ages or "",
            notes or "",
            priority or "",
        )
        for ref, kind, reported, location, child, ages, notes, priority in rows
    ]


def _attendance(session: Session, chosen: Any) -> list[tuple[str, AttendanceFacts]]:
    a = Attendance.__table__.c  # type: ignore[attr-defined]
    query = select(a.incident_ref, a.officer_id, raw(a.arrived_at), raw(a.left_at))
    rows = session.execute(_only(query, a.incident_ref, chosen)).all()
    return [
        (ref, AttendanceFacts(officer, _naive(arrived), _naive(left)))
        for ref, officer, arrived, left in rows
    ]


def _links(session: Session, chosen: Any, policy: Policy) -> list[tuple[str, LinkFacts]]:
    link, clip = ClipLink.__table__, Clip.__table__  # type: ignore[attr-defined]
    review = VoiceReview.__table__  # type: ignore[attr-defined]
    threshold = policy.child_probability_threshold
    figures: list[Any] = [
        child_seconds_sql(clip.c.id, threshold),
        other_voice_seconds_sql(clip.c.id),
        other_voice_first_sql(clip.c.id),
    ]
    lateral = None
    if session.get_bind().dialect.name == "postgresql":  # SQLite has no LATERAL
        lateral = voice_figures_lateral(clip.c.id, threshold)
        figures = [lateral.c.child, lateral.c.other, lateral.c.other_first]
    query = select(
        link.c.incident_ref,
        link.c.officer_id,
        link.c.overlap_s,
        link.c.ambiguous,
        link.c.source,
        *_clip_columns(clip),
        *figures,
        *_review_columns(review.c),
    )
    query = query.join_from(link, clip, link.c.clip_id == clip.c.id)
    if lateral is not None:
        query = query.outerjoin(lateral, true())
    query = query.outerjoin(review, review.c.clip_id == clip.c.id)
    rows = session.execute(_only(query, link.c.incident_ref, chosen)).all()
    return [
        (row[0], LinkFacts(_clip_facts(row[5:]), row[1], row[2], bool(row[3]), row[4]))
        for row in rows
    ]


def _review_columns(r: Any) -> list[Any]:
    return [r.decision, r.start_s, r.end_s, r.reason, r.actor, raw(r.decided_at)]


def _review(row: Any) -> ReviewFacts | None:
    decision, start, end, reason, actor, decided = row
    if decision is None:
        return None
    return ReviewFacts(decision, start, end, reason, actor, _naive(decided))


def _clip_columns(clip: Any) -> list[Any]:
    c = clip.c
    return [
        c.id,
        c.file_name,
        c.status,
        c.failure_reason,
        c.device_serial,
        raw(c.started_at),
        raw(c.ended_at),
        c.duration_s,
        c.audio_state,
        c.speech_seconds,
    ]


def _clip_facts(row: Any) -> ClipFacts:
    clip_id, name, status, failure, serial, started_text, ended_text, duration, audio = row[:9]
    speech, child, other, other_first = row[9:13]
    started = naive(started_text) if started_text else None
    ended = naive(ended_text) if ended_text else None
    return ClipFacts(
        clip_id=clip_id,
        file_name=name,
        status=status,
        failure_reason=failure,
        device_serial=serial,
        started_at=started,
        ended_at=_end(started, ended, duration, status),
        audio_state=audio,
        speech_seconds=speech or 0.0,
        child_speech_seconds=round(child or 0.0, 3),
        other_voice_seconds=round(other or 0.0, 3),
        other_voice_first_s=other_first,
        review=_review(row[13:19]),
    )


def _end(
    started: datetime | None, ended: datetime | None, duration: float | None, status: str
) -> datetime | None:
    """A clip's end; an unreadable clip's end is unknown unless something says otherwise."""
    if started is None:
        return ended
    if duration is not None:
        return ended or started + timedelta(seconds=duration)
    if status == "ingested" or (ended is not None and ended > started):
        return ended or started
    return None


def _naive(value: Any) -> datetime:
    """A required timestamp; SQLite's stored text takes the fast path."""
    if type(value) is str:
        return datetime.fromisoformat(value)
    moment = naive(value)
    assert moment is not None, "a required timestamp is missing"
    return moment


def load_officers(
    session: Session, officers: Collection[str] | None = None
) -> dict[str, OfficerFacts]:
    """Every officer, or only those named in `officers`."""
    c = Officer.__table__.c  # type: ignore[attr-defined]
    query = select(c.officer_id, c.name, c.team, c.station)
    if officers is not None:
        query = query.where(c.officer_id.in_(sorted(officers)))
    return {row[0]: OfficerFacts(*row) for row in session.execute(query).all()}


def unassigned_clips(session: Session, period: Period) -> list[UnassignedClip]:
    """Clips in the period whose officer is unknown: no sidecar officer, camera not assigned.

    One set-based query: the per-clip assignment lookup runs inside the database on the
    assignment's device index (timestamps are stored in one sortable text form).
    """
    c = Clip.__table__.c  # type: ignore[attr-defined]
    a = Assignment.__table__.c  # type: ignore[attr-defined]
    assigned = exists().where(
        a.device_serial == c.device_serial,
        a.issued_at <= c.started_at,
        or_(a.returned_at.is_(None), a.returned_at > c.started_at),
    )
    query = select(c.id, c.file_name, c.device_serial, raw(c.started_at)).where(
        _unknown_officer(c, session.get_bind().dialect.name), c.started_at.is_not(None), ~assigned
    )
    if period.since is not None:
        query = query.where(c.started_at >= period.since)
    if period.until is not None:
        query = query.where(c.started_at < period.until)
    rows = session.execute(query.order_by(c.started_at, c.id)).all()
    return [
        UnassignedClip(clip_id, name, serial, naive(started))
        for clip_id, name, serial, started in rows
    ]


def _unknown_officer(c: Any, dialect: str) -> ColumnElement[bool]:
    """No sidecar officer, said so that each database picks the quick plan."""
    if dialect == "postgresql":
        # PostgreSQL has no statistics for the coalesce below: it guessed one clip in
        # 200 where nine in ten qualify, and probed the assignments clip by clip instead
        # of hashing them once (2.3 times slower).
        return or_(c.officer_id.is_(None), c.officer_id == "")
    # SQLite, with no statistics gathered, would answer "IS NULL OR = ''" by the officer
    # index, reading every clip of the catalogue instead of the period's by start time.
    return func.coalesce(c.officer_id, "") == ""
