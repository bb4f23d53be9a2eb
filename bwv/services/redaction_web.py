"""What the review app's Redact page needs beyond the redaction actions themselves.

Detection and rendering take minutes, longer than a browser waits for a page, so the
web app runs them in a background thread (on SQLite a thread is enough: the media work
holds no transaction, and the catalogue write at the end is short) and the page polls
the job's stage and progress. Trainers never see an original: the media of an approved
example they play is its clip's latest redacted copy, or nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from bwv.core import audit
from bwv.core.db import read_scope, session_scope
from bwv.core.errors import AccessDenied, BwvError, NotFound
from bwv.core.models import Clip, FaceScan, FaceTrack, Redaction
from bwv.services import redaction
from bwv.services.webviews import Media
from redact.plan import Choices


@dataclass
class Job:
    """A detection or render running for the web app, as its page shows it."""

    id: str
    kind: str  # detect | render
    clip_id: int
    actor: str
    stage: str = "planning"  # checking choices, finding words (Whisper) before the media work
    fraction: float = 0.0
    state: str = "running"  # running | done | failed
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def start_job(engine: Engine, kind: str, clip_id: int, actor: str, choices: Choices) -> Job:
    """Starts `kind` (detect or render) for the clip in a background thread."""
    if kind not in ("detect", "render"):
        raise BwvError(f"unknown job {kind!r}")
    if kind == "render":  # refuse bad choices now, on the page, not in the background
        redaction.plan_redaction(str(clip_id), choices, engine=engine, locate_words=False)
    job = Job(secrets.token_hex(8), kind, clip_id, actor)
    with _LOCK:
        _JOBS[job.id] = job
    threading.Thread(target=_run, args=(engine, job, choices), daemon=True).start()
    return job


def _run(engine: Engine, job: Job, choices: Choices) -> None:
    def progress(stage: str, fraction: float) -> None:
        job.stage, job.fraction = stage, fraction

    try:
        if job.kind == "detect":
            found = redaction.detect_faces(
                str(job.clip_id), engine=engine, actor=job.actor, progress=progress
            )
            job.result = {"tracks": len(found.tracks)}
        else:
            made = redaction.render_redaction(
                str(job.clip_id), choices, engine=engine, actor=job.actor, progress=progress
            )
            job.result = {"redaction_id": made.redaction_id}
        job.state, job.fraction, job.stage = "done", 1.0, "done"
    except BwvError as exc:
        job.state, job.message = "failed", str(exc)
    except Exception as exc:  # a background thread has no shell to report to but its page
        job.state, job.message = "failed", f"unexpected error: {type(exc).__name__}: {exc}"


def job(job_id: str, clip_id: int) -> Job:
    """A job of this clip, by id (a job id from another clip is not found)."""
    with _LOCK:
        found = _JOBS.get(job_id)
    if found is None or found.clip_id != clip_id:
        raise NotFound(f"no job {job_id!r} for clip {clip_id}")
    return found


def running_jobs(clip_id: int) -> list[Job]:
    with _LOCK:
        return [j for j in _JOBS.values() if j.clip_id == clip_id and j.state == "running"]


@dataclass(frozen=True)
class RedactionRow:
    id: int
    created_at: str
    actor: str
    tracks: str
    spans: list[dict[str, Any]]
    reason: str


@dataclass(frozen=True)
class TranscriptLine:
    start_s: float
    end_s: float
    speaker: str
    words: list[str]


def redact_page(engine: Engine, clip_id: int, actor: str) -> dict[str, Any]:
    """The plan view (tracks, speakers), the transcript's words and the copies made so far.

    The page shows the clip's words and faces, so its view is audited like a clip page's.
    """
    view = redaction.plan_redaction(str(clip_id), Choices(), engine=engine)
    with read_scope(engine) as session:
        rows = session.exec(
            select(Redaction)
            .where(col(Redaction.clip_id) == clip_id)
            .order_by(col(Redaction.id).desc())
        ).all()
        made = [
            RedactionRow(
                r.id or 0,
                r.created_at.isoformat(timespec="seconds"),
                r.actor,
                r.tracks,
                json.loads(r.spans_json),
                r.reason,
            )
            for r in rows
        ]
        lines = [
            TranscriptLine(s[1], s[2], s[0], s[3].split())
            for s in redaction.clip_segments(session, clip_id)
        ]
    with session_scope(engine) as session:
        audit.record(session, actor=actor, action="redact_view", object_ids=[f"clip:{clip_id}"])
    return {"view": view, "made": made, "lines": lines, "jobs": running_jobs(clip_id)}


def track_thumbnail(engine: Engine, clip_id: int, label: str) -> bytes:
    """A face track's thumbnail JPEG from the store, found by clip and label only."""
    with read_scope(engine) as session:
        query = select(FaceTrack.thumbnail_path).where(
            col(FaceTrack.clip_id) == clip_id, col(FaceTrack.label) == label
        )
        path = session.exec(query).first()
    if not path or not Path(path).is_file():
        raise NotFound(f"clip {clip_id} has no thumbnail for face track {label}")
    return Path(path).read_bytes()


def preview(engine: Engine, clip_id: int, seconds: float, labels: list[str], solid: bool) -> bytes:
    """The frame at `seconds` with the chosen tracks' boxes hidden, as JPEG."""
    from redact.plan import chosen_tracks
    from redact.preview import frame_at, hidden

    source = redaction.media_source(engine, str(clip_id), None)
    with read_scope(engine) as session:
        scan = session.exec(select(FaceScan).where(col(FaceScan.clip_id) == clip_id)).first()
        tracks = {t.label: t.keys_json for t in redaction.face_tracks(session, clip_id)}
        fps = scan.fps if scan else 30.0
    chosen = chosen_tracks(",".join(labels) or "none", list(tracks))
    frame = round(seconds * fps)
    boxes = []
    for label in chosen:
        keys = {int(k[0]): tuple(k[2:6]) for k in json.loads(tracks[label])}
        if frame in keys:
            boxes.append(keys[frame])
    return hidden(frame_at(source.path, seconds), boxes, solid)


def redacted_media(engine: Engine, clip_id: int) -> Media:
    """The clip's latest redacted copy; refused when none was made (never the original)."""
    with read_scope(engine) as session:
        if session.get(Clip, clip_id) is None:
            raise NotFound(f"no clip {clip_id} in the catalogue")
        query = (
            select(Redaction.path)
            .where(col(Redaction.clip_id) == clip_id)
            .order_by(col(Redaction.id).desc())
        )
        path = session.exec(query).first()
    if path is None:
        raise AccessDenied(f"clip {clip_id} has no redacted copy yet; trainers see only that")
    return _stored_copy(path, f"the redacted copy of clip {clip_id}")


def audit_copy_playback(engine: Engine, redaction_id: int, actor: str) -> None:
    """One `play` event per playback of a redacted copy started (not per seek)."""
    with session_scope(engine) as session:
        audit.record(session, actor=actor, action="play", object_ids=[f"redaction:{redaction_id}"])


def redaction_media(engine: Engine, redaction_id: int) -> Media:
    """One redacted copy by its id, for those who may see the catalogue."""
    with read_scope(engine) as session:
        row = session.get(Redaction, redaction_id)
        clip_id = row.clip_id if row else None
        path = row.path if row else None
    if path is None or clip_id is None:
        raise NotFound(f"no redaction {redaction_id}")
    return _stored_copy(path, f"redaction {redaction_id}")


def _stored_copy(path: str, what: str) -> Media:
    """A redacted copy in the store, served like an original (an audio-only copy is .m4a)."""
    found = Path(path)
    if not found.is_file():
        raise NotFound(f"{what} is missing from the store")
    kind = "audio/mp4" if found.suffix == ".m4a" else "video/mp4"
    return Media(found, kind, found.stat().st_size)
