"""What the review app's Redact page needs beyond the redaction actions themselves.

Detection and rendering take minutes, longer than a browser waits for a page, so they
run in the background and the page polls the job's stage and progress. One function,
`start_job`, decides where: on SQLite in a thread of the web app (the media work holds
no transaction, and the catalogue write at the end is short); on PostgreSQL as a
`bwv.redact` job of the queue (`bwv.services.queue`), which a `bwv worker` on any
machine takes, so a render survives a restart of the web app, runs again when its
worker dies, and shows in `bwv queue status`. Either way the runner writes the job's
row in the catalogue (`RedactionJob`) and the page reads it from there.

Trainers never see an original: the media of an approved example they play is its
clip's latest redacted copy, or nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bwv.core import audit
from bwv.core.db import is_postgres, read_scope, session_scope
from bwv.core.errors import AccessDenied, BwvError, CatalogueBusy, NotFound
from bwv.core.models import Clip, FaceScan, FaceTrack, Redaction, RedactionJob, utc_now
from bwv.services import redaction
from bwv.services.webviews import Media
from redact.plan import Choices

ACTIVE = ("queued", "running")
REQUESTS = {"detect": "face_detect_request", "render": "redact_request"}


@dataclass
class Job:
    """A detection or render asked for on the Redact page, as its page shows it."""

    id: str
    kind: str  # detect | render
    clip_id: int
    actor: str
    stage: str = "waiting"  # then planning (checking choices, finding words), detect, render
    fraction: float = 0.0
    state: str = "queued"  # queued | running | done | failed
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def start_job(engine: Engine, kind: str, clip_id: int, actor: str, choices: Choices) -> Job:
    """Starts `kind` (detect or render) for the clip: a queued job on PostgreSQL, a
    thread on SQLite. The same job still waiting or running is returned, not repeated."""
    if kind not in REQUESTS:
        raise BwvError(f"unknown job {kind!r}")
    if kind == "render":  # refuse bad choices now, on the page, not in the background
        redaction.plan_redaction(str(clip_id), choices, engine=engine, locate_words=False)
    wanted = json.dumps(asdict(choices), sort_keys=True)
    row = RedactionJob(
        id=secrets.token_hex(8), clip_id=clip_id, kind=kind, actor=actor, choices_json=wanted
    )
    if not is_postgres(engine):  # no queue to wait in: it runs now, in this process
        row.state, row.stage, row.runner = "running", "planning", _runner()
    shown, same = _claim(engine, row)
    if same is not None:
        return same
    if is_postgres(engine):
        return _queued(engine, shown, wanted)
    threading.Thread(target=run_job, args=(engine, shown.id), daemon=True).start()
    return shown


def _claim(engine: Engine, row: RedactionJob) -> tuple[Job, Job | None]:
    """The same job already waiting or running, else this one's row added with the
    request's audit event, in one write transaction: on SQLite (one writer at a time)
    two clicks cannot both add a job; on PostgreSQL the queueing lock settles that race
    (`_queued`, which then removes the row; its audit event stays, as the click did)."""
    shown = _view(engine, row)  # before the insert: the row is the session's after it
    with session_scope(engine) as session:
        rows = session.exec(_active_query(row.clip_id, row.kind, row.choices_json)).all()
        same = next((v for v in (_view(engine, r) for r in rows) if v.state in ACTIVE), None)
        if same is None:
            _refuse_if_waiting(session, engine, row)
            session.add(row)
            audit.record(
                session,
                actor=row.actor,
                action=REQUESTS[row.kind],  # the user's action; the job's result is its own
                object_ids=[f"clip:{row.clip_id}", f"redaction_job:{row.id}"],
                details={"choices": json.loads(row.choices_json)},
            )
    return shown, same


def _refuse_if_waiting(session: Session, engine: Engine, row: RedactionJob) -> None:
    """On PostgreSQL, another job of the clip and kind (other choices) still waiting in
    the queue: refused before anything is written (its lock would refuse it anyway)."""
    from bwv.services.queue import redaction_waiting

    if is_postgres(engine) and redaction_waiting(session, row.clip_id, row.kind):
        raise _waiting(row.kind, row.clip_id)


def _waiting(kind: str, clip_id: int) -> BwvError:
    return BwvError(
        f"another {kind} of clip {clip_id} is already waiting for a worker: "
        "try again once it has started"
    )


def _queued(engine: Engine, shown: Job, choices_json: str) -> Job:
    """The row first, then the job (a worker that takes the job at once finds its row);
    the queueing lock turns a second click that raced the first into no second job."""
    from bwv.services.queue import defer_redaction

    try:
        deferred = defer_redaction(engine, shown.id, shown.clip_id, shown.kind)
    except BwvError as exc:
        with contextlib.suppress(BwvError):  # the catalogue may be away too
            _finish(engine, shown.id, "failed", message=f"could not be queued: {exc}")
        raise
    if deferred:
        return shown
    _forget(engine, shown.id)
    same = _active(engine, shown.clip_id, shown.kind, choices_json)
    if same is None:
        raise _waiting(shown.kind, shown.clip_id)
    return same


def _active(engine: Engine, clip_id: int, kind: str, choices_json: str) -> Job | None:
    """The clip's waiting or running job of this kind with these choices."""
    views = [
        _view(engine, row) for row in _rows(engine, _active_query(clip_id, kind, choices_json))
    ]
    return next((v for v in views if v.state in ACTIVE), None)


def _active_query(clip_id: int, kind: str, choices_json: str) -> Any:
    return (
        select(RedactionJob)
        .where(
            col(RedactionJob.clip_id) == clip_id,
            col(RedactionJob.kind) == kind,
            col(RedactionJob.state).in_(ACTIVE),
            col(RedactionJob.choices_json) == choices_json,
        )
        .order_by(col(RedactionJob.created_at))
    )


def _rows(engine: Engine, query: Any) -> list[RedactionJob]:
    """The job rows the query finds, kept usable after the read ends."""
    with read_scope(engine) as session:
        rows = list(session.exec(query).all())
        session.expunge_all()  # the read's rollback would otherwise expire them
    return rows


def _forget(engine: Engine, job_id: str) -> None:
    with session_scope(engine) as session:
        found = session.get(RedactionJob, job_id)
        if found is not None:
            session.delete(found)


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _view(engine: Engine, row: RedactionJob) -> Job:
    job = Job(
        row.id,
        row.kind,
        row.clip_id,
        row.actor,
        row.stage,
        row.fraction,
        row.state,
        row.message,
        json.loads(row.result_json),
    )
    if job.state in ACTIVE and not is_postgres(engine) and _gone(row.runner):
        job.state, job.message = "failed", "interrupted: the web app running it stopped"
    return job


def _gone(runner: str) -> bool:
    """Whether the process on this machine that ran a job has ended (SQLite only: there
    the web app's own thread runs it; on PostgreSQL stalled workers are the queue's)."""
    host, _, pid = runner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --- running a job: the web app's thread or a worker -------------------------------------


def run_job(engine: Engine, job_id: str, *, last_try: bool = True, worker: bool = False) -> None:
    """Runs the job and writes its outcome to its row. Bad input (the original gone or
    changed, choices no longer valid) fails the job with its reason (naming a worker's
    machine: a mount missing there is the likely cause); a catalogue busy or away for a
    moment is raised for the queue to retry, unless this is the last try."""
    where = f" (on worker {socket.gethostname()})" if worker else ""
    row = next(iter(_rows(engine, _by_id(job_id))), None)
    if row is None or row.state in ("done", "failed"):
        return  # run again after it finished (a retried job): nothing to do
    started = {"state": "running", "stage": "planning", "fraction": 0.0, "message": ""}
    _set(engine, job_id, **started, runner=_runner())
    try:
        _perform(engine, row, _Progress(engine, job_id))
    except CatalogueBusy as exc:
        if not last_try:
            with contextlib.suppress(BwvError):
                _set(engine, job_id, state="queued", stage="waiting", message=f"retrying: {exc}")
            raise
        _finish(engine, job_id, "failed", message=f"{exc}{where}")
    except BwvError as exc:
        _finish(engine, job_id, "failed", message=f"{exc}{where}")
    except Exception as exc:  # a background job has no shell to report to but its page
        message = f"unexpected error: {type(exc).__name__}: {exc}{where}"
        _finish(engine, job_id, "failed", message=message)


def _perform(engine: Engine, row: RedactionJob, progress: _Progress) -> None:
    def done(session: Session, result: dict[str, Any]) -> None:
        # Rolls the copy's rows back if another run of the job (a worker wrongly taken
        # for stalled) finished first: a job is recorded once.
        if not _mark(session, row.id, _finished("done", result=result)):
            raise BwvError(f"job {row.id} was finished by another run")

    clip = str(row.clip_id)
    if row.kind == "detect":
        redaction.detect_faces(
            clip, engine=engine, actor=row.actor, progress=progress, also_write=done
        )
        return
    choices = _choices(row.choices_json)
    redaction.render_redaction(
        clip, choices, engine=engine, actor=row.actor, progress=progress, also_write=done
    )


def _choices(text: str) -> Choices:
    given = json.loads(text)
    return Choices(
        faces=str(given["faces"]),
        mute_speakers=tuple(given["mute_speakers"]),
        mute_words=tuple(given["mute_words"]),
        mute=tuple((float(a), float(b)) for a, b in given["mute"]),
        bleep=bool(given["bleep"]),
        solid=bool(given["solid"]),
        reason=str(given["reason"]),
    )


class _Progress:
    """Writes the stage and fraction to the job's row, at most once a second per stage
    (a render reports every few frames; the page polls once a second)."""

    def __init__(self, engine: Engine, job_id: str) -> None:
        self.engine, self.job_id = engine, job_id
        self.stage, self.at = "", 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.at < 1.0:
            return
        self.stage, self.at = stage, now
        with contextlib.suppress(BwvError):  # a lost progress line must not stop the work
            _set(self.engine, self.job_id, stage=stage, fraction=fraction)


def _finished(state: str, **values: Any) -> dict[str, Any]:
    result = values.pop("result", None)
    fraction = {"fraction": 1.0, "stage": "done"} if state == "done" else {}
    encoded = {"result_json": json.dumps(result)} if result is not None else {}
    return {"state": state, **fraction, **encoded, **values}


def _finish(engine: Engine, job_id: str, state: str, **values: Any) -> None:
    with session_scope(engine) as session:
        _mark(session, job_id, _finished(state, **values))


def _set(engine: Engine, job_id: str, **values: Any) -> None:
    with session_scope(engine) as session:
        _mark(session, job_id, values)


def _mark(session: Session, job_id: str, values: dict[str, Any]) -> bool:
    """Updates a job still waiting or running (never one already done or failed);
    False when there was none."""
    statement = update(RedactionJob).where(
        col(RedactionJob.id) == job_id, col(RedactionJob.state).in_(ACTIVE)
    )
    found = session.execute(statement.values(**values, updated_at=utc_now()))
    return bool(getattr(found, "rowcount", 0))


# --- what the page reads -----------------------------------------------------------------


def job(job_id: str, clip_id: int, engine: Engine) -> Job:
    """A job of this clip, by id (a job id from another clip is not found)."""
    found = next(iter(_rows(engine, _by_id(job_id))), None)
    if found is None or found.clip_id != clip_id:
        raise NotFound(f"no job {job_id!r} for clip {clip_id}")
    return _view(engine, found)


def running_jobs(engine: Engine, clip_id: int) -> list[Job]:
    """The clip's jobs still waiting or running, oldest first."""
    query = (
        select(RedactionJob)
        .where(col(RedactionJob.clip_id) == clip_id, col(RedactionJob.state).in_(ACTIVE))
        .order_by(col(RedactionJob.created_at))
    )
    return [v for v in (_view(engine, r) for r in _rows(engine, query)) if v.state in ACTIVE]


def _by_id(job_id: str) -> Any:
    return select(RedactionJob).where(col(RedactionJob.id) == job_id)


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
    return {"view": view, "made": made, "lines": lines, "jobs": running_jobs(engine, clip_id)}


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
