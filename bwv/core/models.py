"""The catalogue's one domain model: every table `bwv` stores, in one place.

Ingest, linking, compliance and the audit trail all read and write these tables, so
they live together and the Alembic migrations mirror this module. Every timestamp is
stored as naive UTC (portable to SQLite and PostgreSQL) and handed back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC and returns them aware again."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalogue; timestamps must be aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _time(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class Clip(SQLModel, table=True):
    """One original recording, catalogued once per distinct content (SHA-256)."""

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(index=True, unique=True, max_length=64)
    path: str
    file_name: str
    size_bytes: int = Field(sa_type=BigInteger)  # 64-bit: recordings pass 2 GiB
    status: str = Field(index=True, max_length=16)  # ingested | failed
    failure_reason: str | None = None
    ingested_at: datetime = _time(default_factory=utc_now)
    ingest_seconds: float | None = None

    container: str | None = None
    duration_s: float | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    tags_json: str = Field(default="{}", sa_type=Text)

    device_serial: str | None = Field(default=None, index=True)
    officer_id: str | None = Field(default=None, index=True)
    started_at: datetime | None = _time(default=None, index=True)
    ended_at: datetime | None = _time(default=None, index=True)
    time_confidence: str | None = None  # high | low
    latitude: float | None = None
    longitude: float | None = None

    audio_state: str | None = None  # absent | silent | present
    audio_peak_dbfs: float | None = None
    speech_seconds: float | None = None
    transcribed: bool = False
    model_name: str | None = None
    language: str | None = None

    frames_sampled: int | None = None
    dark_frame_share: float | None = None
    blur_score: float | None = None


class ClipField(SQLModel, table=True):
    """Where each metadata value came from: sidecar, container tag, file name or file time."""

    __table_args__ = (UniqueConstraint("clip_id", "field"),)

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    field: str = Field(max_length=32)
    value: str
    source: str = Field(max_length=16)
    confidence: str = Field(default="high", max_length=8)


class SpeechRegion(SQLModel, table=True):
    """A stretch of the clip where voice activity detection heard speech."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    start_s: float
    end_s: float


class TranscriptSegment(SQLModel, table=True):
    """A time-coded piece of transcript, with the probability that a child is speaking."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    start_s: float
    end_s: float
    text: str = Field(sa_type=Text)
    confidence: float
    no_speech_prob: float | None = None
    child_probability: float | None = None
    # Seconds of speech inside [start_s, end_s]: less than its length when the segment
    # spans a pause that voice activity detection cut out. Child speech sums this.
    speech_s: float | None = None
    # The clip's segments grouped by voice (0, 1, ... in order of first speech), and the
    # child probability pooled over the speaker's segments, which child speech is judged on.
    speaker: int | None = None
    speaker_child_probability: float | None = None
    # Whether the segment's speaker group is the camera's wearer (near-field, loudest).
    wearer: bool | None = None


class Derivative(SQLModel, table=True):
    """A file made from an original (thumbnail, export, redaction), hashed and linked back."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    kind: str = Field(max_length=32)
    sha256: str = Field(max_length=64)
    media_type: str = Field(max_length=64)
    content: bytes | None = Field(default=None, sa_type=LargeBinary)
    path: str | None = None
    created_at: datetime = _time(default_factory=utc_now)


class Officer(SQLModel, table=True):
    officer_id: str = Field(primary_key=True, max_length=64)
    name: str
    team: str = Field(index=True)
    station: str = Field(index=True)


class Assignment(SQLModel, table=True):
    """Which camera an officer wore, from issue to return (open while not yet returned)."""

    __table_args__ = (UniqueConstraint("device_serial", "issued_at"),)

    id: int | None = Field(default=None, primary_key=True)
    device_serial: str = Field(index=True, max_length=64)
    officer_id: str = Field(index=True, max_length=64)
    issued_at: datetime = _time()
    returned_at: datetime | None = _time(default=None)


class Incident(SQLModel, table=True):
    incident_ref: str = Field(primary_key=True, max_length=64)
    type: str = Field(index=True)
    reported_at: datetime = _time(index=True)
    location: str = ""
    child_contact: bool = False
    child_ages: str = ""  # ages separated by ';', empty when unknown
    notes: str = Field(default="", sa_type=Text)
    # Command-and-control priority (P1, P2, ...; '' when not given): sets the target for
    # time to first arrival in the policy.
    priority: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})


class Attendance(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("incident_ref", "officer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_ref: str = Field(foreign_key="incident.incident_ref", index=True, max_length=64)
    officer_id: str = Field(index=True, max_length=64)
    arrived_at: datetime = _time()
    left_at: datetime = _time()


class ClipLink(SQLModel, table=True):
    """A clip attached to an incident, computed from attendance or decided by a person."""

    __table_args__ = (UniqueConstraint("clip_id", "incident_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    incident_ref: str = Field(foreign_key="incident.incident_ref", index=True, max_length=64)
    officer_id: str | None = Field(default=None, index=True, max_length=64)
    overlap_s: float = 0.0
    ambiguous: bool = False
    source: str = Field(default="auto", max_length=8)  # auto | manual


class LinkDecision(SQLModel, table=True):
    """A person's link or unlink of a clip and incident; it outlives every recomputation."""

    __table_args__ = (UniqueConstraint("clip_id", "incident_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    incident_ref: str = Field(max_length=64)
    action: str = Field(max_length=8)  # link | unlink
    actor: str
    reason: str = ""
    decided_at: datetime = _time(default_factory=utc_now)


class AuditEvent(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit trail."""

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _time(default_factory=utc_now, index=True)
    actor: str = Field(index=True)
    action: str = Field(index=True, max_length=32)
    object_ids: str = ""
    outcome: str = Field(max_length=16)
    details: str = Field(default="{}", sa_type=Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class VoiceReview(SQLModel, table=True):
    """A person's finding on whether a child's voice is heard in a clip.

    It overrides the classifier either way, replaces any earlier review of the clip, and
    outlives re-ingest and every recomputation, like a manual link.
    """

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True, unique=True)
    decision: str = Field(max_length=16)  # heard | not_heard
    start_s: float | None = None  # the span where the child is heard (heard only)
    end_s: float | None = None
    reason: str = Field(sa_type=Text)
    actor: str
    decided_at: datetime = _time(default_factory=utc_now)


class User(SQLModel, table=True):
    """Someone who may sign in to `bwv serve`, with one role."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    role: str = Field(max_length=24)  # evidence_officer | inspector | trainer | admin
    password_hash: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = _time(default=None)
    created_at: datetime = _time(default_factory=utc_now)


class WebSession(SQLModel, table=True):
    """A signed-in browser: only the SHA-256 of its cookie is stored, never the cookie."""

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _time(default_factory=utc_now)
    expires_at: datetime = _time()


class Example(SQLModel, table=True):
    """A span a trainer keeps as an example of good or poor practice."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    start_s: float
    end_s: float
    practice: str = Field(max_length=8)  # good | poor
    tags: str = ""  # separated by ','
    notes: str = Field(default="", sa_type=Text)
    actor: str
    created_at: datetime = _time(default_factory=utc_now)
    approved_by: str | None = None
    approved_at: datetime | None = _time(default=None)


class FaceScan(SQLModel, table=True):
    """The last face detection run over a clip: which model, how, and what the video was."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True, unique=True)
    model_sha256: str = Field(max_length=64)
    settings_json: str = Field(default="{}", sa_type=Text)
    width: int
    height: int
    fps: float
    frames: int
    actor: str
    scanned_at: datetime = _time(default_factory=utc_now)


class FaceTrack(SQLModel, table=True):
    """One face followed over time in a clip (T1, T2, ...), with its boxes and a thumbnail.

    `keys_json` holds one enlarged box per frame the track covers, as
    [frame, seconds, x1, y1, x2, y2]: the boxes a redaction hides, frame by frame.
    """

    __table_args__ = (UniqueConstraint("clip_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    label: str = Field(max_length=16)
    start_s: float
    end_s: float
    frames: int
    max_width_px: float
    score: float
    thumbnail_sha256: str | None = Field(default=None, max_length=64)
    thumbnail_path: str | None = None
    keys_json: str = Field(sa_type=Text)


class Redaction(SQLModel, table=True):
    """A redacted copy of a clip in the store, with its log; never replaced, only added."""

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    sha256: str = Field(max_length=64)
    path: str
    log_sha256: str = Field(max_length=64)
    log_path: str
    tracks: str = ""  # the hidden tracks' labels, separated by ','
    spans_json: str = Field(default="[]", sa_type=Text)
    reason: str = Field(sa_type=Text)
    actor: str
    created_at: datetime = _time(default_factory=utc_now)


class RedactionJob(SQLModel, table=True):
    """A detection or render asked for on the Redact page, as its page shows it.

    Written by whoever runs it (a thread of `bwv serve` on SQLite, a `bwv worker` on
    PostgreSQL, possibly on another machine), read by the page that polls it.
    """

    id: str = Field(primary_key=True, max_length=32)
    clip_id: int = Field(foreign_key="clip.id", index=True)
    kind: str = Field(max_length=16)  # detect | render
    actor: str
    choices_json: str = Field(default="{}", sa_type=Text)
    state: str = Field(default="queued", max_length=16)  # queued | running | done | failed
    stage: str = Field(default="waiting", max_length=32)
    fraction: float = 0.0
    message: str = Field(default="", sa_type=Text)
    result_json: str = Field(default="{}", sa_type=Text)
    runner: str = ""  # host:pid of the process running it
    created_at: datetime = _time(default_factory=utc_now)
    updated_at: datetime = _time(default_factory=utc_now)
