"""Builders for compliance tests: real catalogue rows in a real SQLite file, no mocks."""

from __future__ import annotations

import atexit
import itertools
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from bwv.core.db import database_url, get_engine, session_scope
from bwv.core.models import (
    Assignment,
    Attendance,
    Clip,
    Incident,
    Officer,
    TranscriptSegment,
)
from compliance.linking import LinkSummary, recompute_links
from compliance.policy import Policy

_serial = itertools.count(1)


_EMPTY: list[Path] = []  # one catalogue migrated by the real migrations, per test session


# Test folders whose catalogue is a PostgreSQL database (the `engine` fixture's
# postgresql parameter): the folder's catalogue is that database, not `bwv.db`.
POSTGRES_URLS: dict[Path, str] = {}


def catalogue_arg(tmp_path: Path) -> str:
    """What `--db` names for the catalogue of `tmp_path`: its file or its database URL."""
    return POSTGRES_URLS.get(tmp_path) or str(tmp_path / "bwv.db")


def make_engine(tmp_path: Path) -> Engine:
    """The catalogue at `tmp_path/bwv.db`; a new one is a copy of an empty catalogue the
    migrations built once this session (running them per test cost 0.1 s each)."""
    if tmp_path in POSTGRES_URLS:
        return get_engine(POSTGRES_URLS[tmp_path])
    target = tmp_path / "bwv.db"
    if not target.exists():
        with sqlite3.connect(_empty_catalogue()) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
    return get_engine(database_url(str(target)))


def _empty_catalogue() -> Path:
    if not _EMPTY:
        folder = tempfile.mkdtemp(prefix="bwv-empty-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        made = Path(folder) / "bwv.db"
        get_engine(database_url(str(made))).dispose()
        _EMPTY.append(made)
    return _EMPTY[0]


def utc(text: str) -> datetime:
    """`2024-01-16T10:00:00` read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_officer(
    session: Session, officer_id: str, team: str = "Team A", station: str = "Central"
) -> None:
    session.add(Officer(officer_id=officer_id, name=f"PC {officer_id}", team=team, station=station))


def add_assignment(
    session: Session, serial: str, officer: str, issued: str, returned: str | None = None
) -> None:
    session.add(
        Assignment(
            device_serial=serial,
            officer_id=officer,
            issued_at=utc(issued),
            returned_at=utc(returned) if returned else None,
        )
    )


def add_incident(
    session: Session,
    ref: str,
    reported: str,
    *,
    child_contact: bool = True,
    ages: str = "7",
    kind: str = "Domestic abuse",
    notes: str = "",
    location: str = "1 High Street",
    priority: str = "",
) -> None:
    session.add(
        Incident(
            priority=priority,
            incident_ref=ref,
            type=kind,
            reported_at=utc(reported),
            location=location,
            child_contact=child_contact,
            child_ages=ages,
            notes=notes,
        )
    )
    session.flush()


def add_attendance(session: Session, ref: str, officer: str, arrived: str, left: str) -> None:
    session.add(
        Attendance(incident_ref=ref, officer_id=officer, arrived_at=utc(arrived), left_at=utc(left))
    )


def add_clip(
    session: Session,
    *,
    serial: str,
    start: str,
    seconds: float | None = 20.0,
    officer: str | None = None,
    status: str = "ingested",
    audio: str | None = "present",
    speech: float = 10.0,
    child: float = 0.0,
    adult_segment: float = 0.0,
) -> int:
    """A clip; `child` seconds of transcript at p(child)=0.9, `adult_segment` at 0.2."""
    number = next(_serial)
    began = utc(start)
    failed = status != "ingested"
    clip = Clip(
        sha256=f"{number:064x}",
        path=f"/media/{number}.mp4",
        file_name=f"{serial}_{number}.mp4",
        size_bytes=1000,
        status=status,
        failure_reason="moov atom not found" if failed else None,
        device_serial=serial,
        officer_id=officer,
        started_at=began,
        ended_at=None if failed or seconds is None else began + timedelta(seconds=seconds),
        duration_s=None if failed else seconds,
        audio_state=None if failed else audio,
        speech_seconds=None if failed else speech,
        transcribed=not failed,
    )
    session.add(clip)
    session.flush()
    assert clip.id is not None
    _segments(session, clip.id, child, adult_segment)
    return clip.id


def _segments(session: Session, clip_id: int, child: float, adult: float) -> None:
    if child:
        session.add(_segment(clip_id, 1.0, 1.0 + child, 0.9))
    if adult:
        session.add(_segment(clip_id, 20.0, 20.0 + adult, 0.2))


def _segment(
    clip_id: int, start: float, end: float, probability: float, speaker: float | None = None
) -> TranscriptSegment:
    return TranscriptSegment(
        clip_id=clip_id,
        start_s=start,
        end_s=end,
        text="words",
        confidence=-0.2,
        child_probability=probability,
        speaker=None if speaker is None else 0,
        speaker_child_probability=speaker,
    )


def add_segment(
    session: Session, clip_id: int, seconds: float, alone: float, speaker: float | None
) -> None:
    """A segment scored `alone`, whose speaker group's pooled probability is `speaker`."""
    session.add(_segment(clip_id, 40.0, 40.0 + seconds, alone, speaker))


def relink(engine: Engine, policy: Policy | None = None) -> LinkSummary:
    with session_scope(engine) as session:
        return recompute_links(session, policy=policy)


def standard_incident(session: Session, *, ages: str = "7", child_contact: bool = True) -> None:
    """O1 wearing CAM1 attends INC-1 from 10:00 to 10:10 UTC on 16 January 2024."""
    add_officer(session, "O1")
    add_assignment(session, "CAM1", "O1", "2024-01-01T00:00:00")
    add_incident(session, "INC-1", "2024-01-16T09:50:00", ages=ages, child_contact=child_contact)
    add_attendance(session, "INC-1", "O1", "2024-01-16T10:00:00", "2024-01-16T10:10:00")
