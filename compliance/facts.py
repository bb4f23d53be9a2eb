"""Loading what the verdicts are judged on: incidents, attendance, linked clips, cameras.

Reports cover up to hundreds of thousands of incidents, so everything is fetched with a
handful of set-based queries (one per table, filtered by the reporting period through a
join) and grouped in memory, never one query per incident. The result is plain frozen
dataclasses, so the verdict rules stay pure functions that tests can feed directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlmodel import Session

from bwv.models import Attendance, Clip, ClipLink, Incident, Officer, TranscriptSegment
from compliance.linking import AssignmentIndex, load_assignments
from compliance.policy import Policy


@dataclass(frozen=True)
class Period:
    """Incidents reported in [since, until); either end may be open."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class IncidentFacts:
    incident_ref: str
    type: str
    reported_at: datetime
    location: str
    child_contact: bool
    child_ages: str
    notes: str


@dataclass(frozen=True)
class OfficerFacts:
    officer_id: str
    name: str
    team: str
    station: str


@dataclass(frozen=True)
class AttendanceFacts:
    officer_id: str
    arrived_at: datetime
    left_at: datetime


@dataclass(frozen=True)
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
    child_speech_seconds: float

    @property
    def readable(self) -> bool:
        return self.status == "ingested"


@dataclass(frozen=True)
class LinkFacts:
    clip: ClipFacts
    officer_id: str | None
    overlap_s: float
    ambiguous: bool
    source: str


@dataclass(frozen=True)
class IncidentEvidence:
    incident: IncidentFacts
    attendance: list[AttendanceFacts] = field(default_factory=list)
    links: list[LinkFacts] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    incidents: list[IncidentEvidence]
    officers: dict[str, OfficerFacts]
    cameras: AssignmentIndex


def load_evidence(
    session: Session, *, policy: Policy, period: Period, refs: list[str] | None = None
) -> Evidence:
    """Every incident in `period` (or named in `refs`) with its attendance and links."""
    chosen = _incident_filter(period, refs)
    by_ref = {facts.incident_ref: IncidentEvidence(facts) for facts in _incidents(session, chosen)}
    for ref, attendance in _attendance(session, chosen):
        by_ref[ref].attendance.append(attendance)
    for ref, link in _links(session, chosen, policy):
        by_ref[ref].links.append(link)
    return Evidence(
        incidents=list(by_ref.values()),
        officers=load_officers(session),
        cameras=load_assignments(session),
    )


def _incident_filter(period: Period, refs: list[str] | None) -> ColumnElement[bool]:
    c = Incident.__table__.c  # type: ignore[attr-defined]
    conditions: list[ColumnElement[bool]] = []
    if refs is not None:
        conditions.append(c.incident_ref.in_(refs))
    if period.since is not None:
        conditions.append(c.reported_at >= period.since)
    if period.until is not None:
        conditions.append(c.reported_at < period.until)
    return and_(True, *conditions)


def _incidents(session: Session, chosen: ColumnElement[bool]) -> list[IncidentFacts]:
    c = Incident.__table__.c  # type: ignore[attr-defined]
    query = select(
        c.incident_ref,
        c.type,
        c.reported_at,
        c.location,
        c.child_contact,
        c.child_ages,
        c.notes,
    ).where(chosen)
    return [
        IncidentFacts(ref, kind, reported, location or "", bool(child), ages or "", notes or "")
        for ref, kind, reported, location, child, ages, notes in session.execute(query)
    ]


def _attendance(session: Session, chosen: ColumnElement[bool]) -> list[tuple[str, AttendanceFacts]]:
    a = Attendance.__table__.c  # type: ignore[attr-defined]
    i = Incident.__table__.c  # type: ignore[attr-defined]
    query = (
        select(a.incident_ref, a.officer_id, a.arrived_at, a.left_at)
        .join_from(Attendance.__table__, Incident.__table__, a.incident_ref == i.incident_ref)  # type: ignore[attr-defined]
        .where(chosen)
        .order_by(a.arrived_at, a.officer_id)
    )
    return [(ref, AttendanceFacts(*rest)) for ref, *rest in session.execute(query)]


def _links(
    session: Session, chosen: ColumnElement[bool], policy: Policy
) -> list[tuple[str, LinkFacts]]:
    child = _child_speech(session, chosen, policy)
    link, clip = ClipLink.__table__, Clip.__table__  # type: ignore[attr-defined]
    incident = Incident.__table__  # type: ignore[attr-defined]
    query = (
        select(
            link.c.incident_ref,
            link.c.officer_id,
            link.c.overlap_s,
            link.c.ambiguous,
            link.c.source,
            *_clip_columns(clip),
        )
        .join_from(link, clip, link.c.clip_id == clip.c.id)
        .join(incident, link.c.incident_ref == incident.c.incident_ref)
        .where(chosen)
        .order_by(clip.c.started_at, clip.c.id)
    )
    return [
        (row[0], LinkFacts(_clip_facts(row[5:], child), row[1], row[2], bool(row[3]), row[4]))
        for row in session.execute(query)
    ]


def _clip_columns(clip: Any) -> list[Any]:
    c = clip.c
    return [
        c.id,
        c.file_name,
        c.status,
        c.failure_reason,
        c.device_serial,
        c.started_at,
        c.ended_at,
        c.duration_s,
        c.audio_state,
        c.speech_seconds,
    ]


def _clip_facts(row: Any, child: dict[int, float]) -> ClipFacts:
    clip_id, name, status, failure, serial, started, ended, duration, audio, speech = row
    return ClipFacts(
        clip_id=clip_id,
        file_name=name,
        status=status,
        failure_reason=failure,
        device_serial=serial,
        started_at=started,
        ended_at=_end(started, ended, duration, status),
        audio_state=audio,
        speech_seconds=float(speech or 0.0),
        child_speech_seconds=round(child.get(clip_id, 0.0), 3),
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


def _child_speech(
    session: Session, chosen: ColumnElement[bool], policy: Policy
) -> dict[int, float]:
    """Seconds of transcript attributed to a child, per linked clip, at the policy threshold."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    link, incident = ClipLink.__table__, Incident.__table__  # type: ignore[attr-defined]
    linked = (
        select(link.c.clip_id)
        .join(incident, link.c.incident_ref == incident.c.incident_ref)
        .where(chosen)
    )
    query = (
        select(s.clip_id, func.sum(s.end_s - s.start_s))
        .where(s.child_probability >= policy.child_probability_threshold)
        .where(s.clip_id.in_(linked))
        .group_by(s.clip_id)
    )
    return {clip_id: float(total or 0.0) for clip_id, total in session.execute(query)}


def load_officers(session: Session) -> dict[str, OfficerFacts]:
    c = Officer.__table__.c  # type: ignore[attr-defined]
    query = select(c.officer_id, c.name, c.team, c.station)
    return {row[0]: OfficerFacts(*row) for row in session.execute(query)}
