"""Storing one processed file: the clip, its provenance, speech, transcript and thumbnail.

Each file is written in a single transaction together with its audit event, so the
catalogue never holds half a clip. A hash that another process stored in the meantime
is treated as already catalogued, which keeps concurrent ingests exact.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bwv.core.audit import record
from bwv.core.db import advisory_lock, session_scope
from bwv.core.models import Clip, ClipField, Derivative, SpeechRegion, TranscriptSegment
from ingest.pipeline import FileResult
from ingest.provenance import path_text


def store_result(
    result: FileResult, *, engine: Engine, actor: str, retry_failed: bool = False
) -> int | None:
    """Writes the clip and everything about it; None when the hash is already catalogued.

    With `retry_failed`, a clip recorded as failed (under this content, or as this
    unreadable path) is processed again in place: it keeps its id, and the audit event
    names the earlier failure.
    """
    with session_scope(engine) as session:
        # Two workers (PostgreSQL) with the same content take turns here, so the second
        # finds the first's clip instead of failing on the unique hash.
        advisory_lock(session, f"clip {result.sha256}")
        existing = session.exec(select(Clip).where(Clip.sha256 == result.sha256)).first()
        if existing and not (retry_failed and existing.status == "failed"):
            return None
        earlier = existing or (_unreadable_clip(session, result) if retry_failed else None)
        note = _retry_note(earlier) if earlier else None
        clip = _retried(session, earlier, result) if earlier else clip_row(result)
        session.add(clip)
        session.flush()
        assert clip.id is not None
        session.add_all(detail_rows(clip.id, result))
        details = _audit_details(result)
        if note:
            details["retry_of"] = note
        record(
            session,
            actor=actor,
            action="ingest",
            object_ids=[f"clip:{clip.id}"],
            outcome="failed" if result.failure else "ok",
            details=details,
        )
        return clip.id


def unreadable_hash(path: Path) -> str:
    """The stand-in identity of a file that could not be read: derived from its path."""
    return hashlib.sha256(f"unreadable\0{path_text(path)}".encode()).hexdigest()


def _unreadable_clip(session: Session, result: FileResult) -> Clip | None:
    pseudo = unreadable_hash(result.path)
    query = select(Clip).where(Clip.sha256 == pseudo, Clip.status == "failed")
    return session.exec(query).first()


def _retry_note(clip: Clip) -> dict[str, object]:
    return {"sha256": clip.sha256, "status": clip.status, "reason": clip.failure_reason}


# Rows a retry replaces; other derivatives (exports) are history and stay.
_REPLACED = (ClipField, SpeechRegion, TranscriptSegment)
_REPLACED_DERIVATIVES = ("thumbnail", "store_copy")


def _retried(session: Session, clip: Clip, result: FileResult) -> Clip:
    """The failed `clip` rewritten from a new attempt's result, keeping its id."""
    for model in _REPLACED:
        for row in session.exec(select(model).where(model.clip_id == clip.id)).all():
            session.delete(row)
    derivatives = select(Derivative).where(
        Derivative.clip_id == clip.id, col(Derivative.kind).in_(_REPLACED_DERIVATIVES)
    )
    for row in session.exec(derivatives).all():
        session.delete(row)
    session.flush()
    fresh = clip_row(result)
    for name in Clip.model_fields:
        if name not in ("id", "ingested_at"):
            setattr(clip, name, getattr(fresh, name))
    return clip


def clip_row(result: FileResult) -> Clip:
    provenance, media, audio, frames = result.provenance, result.media, result.audio, result.frames
    started = provenance.started_at
    duration = media.duration_s if media else None
    return Clip(
        sha256=result.sha256,
        path=path_text(result.path),
        file_name=path_text(Path(result.path.name)),
        size_bytes=result.size_bytes,
        status="failed" if result.failure else "ingested",
        failure_reason=result.failure,
        ingest_seconds=round(result.seconds, 3),
        container=media.container if media else None,
        duration_s=duration,
        video_codec=media.video_codec if media else None,
        width=media.width if media else None,
        height=media.height if media else None,
        fps=media.fps if media else None,
        audio_codec=media.audio_codec if media else None,
        audio_channels=media.audio_channels if media else None,
        audio_sample_rate=media.audio_sample_rate if media else None,
        tags_json=json.dumps(media.tags if media else {}, sort_keys=True, ensure_ascii=False),
        device_serial=provenance.text("device_serial"),
        officer_id=provenance.text("officer_id"),
        started_at=started,
        ended_at=ended_at(started, duration),
        time_confidence=provenance.time_confidence,
        latitude=provenance.number("latitude"),
        longitude=provenance.number("longitude"),
        audio_state=audio.state if audio else None,
        audio_peak_dbfs=audio.peak_dbfs if audio else None,
        speech_seconds=audio.speech_seconds if audio else None,
        transcribed=bool(audio and audio.transcribed),
        frames_sampled=frames.frames_sampled if frames else None,
        dark_frame_share=frames.dark_frame_share if frames else None,
        blur_score=frames.blur_score if frames else None,
    )


def ended_at(started: datetime | None, duration: float | None) -> datetime | None:
    """Start plus duration; a duration no clock can add (hostile, NaN) gives no end time."""
    if started is None or not duration or not math.isfinite(duration):
        return started
    try:
        return started + timedelta(seconds=duration)
    except OverflowError:
        return started


def detail_rows(
    clip_id: int, result: FileResult
) -> list[ClipField | SpeechRegion | TranscriptSegment | Derivative]:
    rows: list[ClipField | SpeechRegion | TranscriptSegment | Derivative] = [
        ClipField(
            clip_id=clip_id, field=name, value=v.value, source=v.source, confidence=v.confidence
        )
        for name, v in result.provenance.fields.items()
    ]
    if result.audio:
        rows += [SpeechRegion(clip_id=clip_id, start_s=s, end_s=e) for s, e in result.audio.speech]
        rows += [
            TranscriptSegment(clip_id=clip_id, **{k: getattr(s, k) for k in _SEGMENT_FIELDS})
            for s in result.audio.segments
        ]
    if result.frames and result.frames.thumbnail_jpeg:
        rows.append(_derivative(clip_id, "thumbnail", "image/jpeg", result.frames.thumbnail_jpeg))
    if result.store_path:
        rows.append(
            Derivative(clip_id=clip_id, kind="store_copy", sha256=result.sha256,
                       media_type="application/octet-stream", path=str(result.store_path))
        )  # fmt: skip
    return rows


_SEGMENT_FIELDS = (
    "start_s",
    "end_s",
    "text",
    "confidence",
    "no_speech_prob",
    "child_probability",
    "speech_s",
    "speaker",
    "speaker_child_probability",
    "wearer",
)


def _derivative(clip_id: int, kind: str, media_type: str, content: bytes) -> Derivative:
    return Derivative(
        clip_id=clip_id,
        kind=kind,
        sha256=hashlib.sha256(content).hexdigest(),
        media_type=media_type,
        content=content,
    )


def _audit_details(result: FileResult) -> dict[str, object]:
    details: dict[str, object] = {"path": path_text(result.path), "sha256": result.sha256}
    if result.failure:
        details["reason"] = result.failure
    if result.provenance.warnings:
        details["warnings"] = list(result.provenance.warnings)
    return details
