"""Reading the catalogue: listing clips, one clip in full, transcript search and exports.

Each function opens its own transaction at the boundary, returns plain dataclasses (the
JSON contract of `bwv clips/show/search`) and records that the data was consulted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from bwv.audit import record
from bwv.db import session_scope
from bwv.errors import BwvError, NotFound
from bwv.models import Clip, ClipField, SpeechRegion, TranscriptSegment
from bwv.timeutil import iso_z
from ingest.config import CHILD_THRESHOLD, decision_probability


@dataclass(frozen=True)
class ClipFilter:
    device: str | None = None
    officer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    failed: bool = False


@dataclass(frozen=True)
class ClipSummary:
    id: int
    file_name: str
    status: str
    device_serial: str | None
    officer_id: str | None
    started_at: str | None
    duration_s: float | None
    audio_state: str | None
    speech_seconds: float | None
    child_speech_seconds: float | None
    failure_reason: str | None


@dataclass(frozen=True)
class SegmentView:
    start_s: float
    end_s: float
    text: str
    confidence: float
    child_probability: float | None  # the segment alone
    child: bool  # judged on the speaker's pooled probability, as clip child speech is
    speaker: int | None = None
    speaker_child_probability: float | None = None


@dataclass(frozen=True)
class ClipDetail:
    clip: dict[str, Any]
    provenance: dict[str, dict[str, str]]
    speech_regions: list[tuple[float, float]]
    transcript: list[SegmentView] = field(default_factory=list)


@dataclass(frozen=True)
class SearchHit:
    clip_id: int
    file_name: str
    start_s: float
    end_s: float
    snippet: str
    child_probability: float | None


def list_clips(*, engine: Engine, actor: str, clip_filter: ClipFilter) -> list[ClipSummary]:
    query = select(Clip).order_by(col(Clip.started_at), col(Clip.id))
    if clip_filter.device:
        query = query.where(Clip.device_serial == clip_filter.device)
    if clip_filter.officer:
        query = query.where(Clip.officer_id == clip_filter.officer)
    if clip_filter.since:
        query = query.where(col(Clip.ended_at) >= clip_filter.since)
    if clip_filter.until:
        query = query.where(col(Clip.started_at) <= clip_filter.until)
    if clip_filter.failed:
        query = query.where(Clip.status == "failed")
    with session_scope(engine) as session:
        rows = [_summary(c) for c in session.exec(query).all()]
        record(
            session,
            actor=actor,
            action="list",
            details={"filter": clip_filter.__dict__, "count": len(rows)},
        )
    return rows


def _summary(clip: Clip) -> ClipSummary:
    assert clip.id is not None
    return ClipSummary(
        id=clip.id,
        file_name=clip.file_name,
        status=clip.status,
        device_serial=clip.device_serial,
        officer_id=clip.officer_id,
        started_at=iso_z(clip.started_at),
        duration_s=clip.duration_s,
        audio_state=clip.audio_state,
        speech_seconds=clip.speech_seconds,
        child_speech_seconds=clip.child_speech_seconds,
        failure_reason=clip.failure_reason,
    )


def find_clip(session: Session, reference: str) -> Clip:
    """A clip by id, by SHA-256 (or a unique prefix of 8+ hex digits), or by file name."""
    ref = reference.strip()
    clip = session.get(Clip, int(ref)) if ref.isdigit() else None
    if clip is None and len(ref) >= 8:
        matches = session.exec(select(Clip).where(col(Clip.sha256).startswith(ref.lower()))).all()
        clip = matches[0] if len(matches) == 1 else None
    if clip is None:
        matches = session.exec(select(Clip).where(Clip.file_name == ref)).all()
        clip = matches[0] if len(matches) == 1 else None
    if clip is None:
        raise NotFound(f"no clip {reference!r} in the catalogue (give an id, hash or file name)")
    return clip


def clip_detail(reference: str, *, engine: Engine, actor: str) -> ClipDetail:
    with session_scope(engine) as session:
        clip = find_clip(session, reference)
        detail = ClipDetail(
            clip=_clip_dict(clip),
            provenance=_provenance(session, clip),
            speech_regions=[(r.start_s, r.end_s) for r in _ordered(session, SpeechRegion, clip)],
            transcript=_segments(session, clip),
        )
        record(session, actor=actor, action="show", object_ids=[f"clip:{clip.id}"])
    return detail


def _clip_dict(clip: Clip) -> dict[str, Any]:
    data = clip.model_dump()
    data["tags"] = json.loads(data.pop("tags_json") or "{}")
    for key in ("started_at", "ended_at", "ingested_at"):
        data[key] = iso_z(data[key])
    return data


def _provenance(session: Session, clip: Clip) -> dict[str, dict[str, str]]:
    rows = session.exec(select(ClipField).where(ClipField.clip_id == clip.id)).all()
    return {
        r.field: {"value": r.value, "source": r.source, "confidence": r.confidence} for r in rows
    }


def _ordered(session: Session, model: Any, clip: Clip) -> list[Any]:
    query = select(model).where(model.clip_id == clip.id).order_by(model.start_s, model.id)
    return list(session.exec(query).all())


def _segments(session: Session, clip: Clip) -> list[SegmentView]:
    return [
        SegmentView(
            s.start_s,
            s.end_s,
            s.text,
            s.confidence,
            s.child_probability,
            (p := decision_probability(s)) is not None and p >= CHILD_THRESHOLD,
            s.speaker,
            s.speaker_child_probability,
        )
        for s in _ordered(session, TranscriptSegment, clip)
    ]


def search_transcripts(
    query_text: str, *, engine: Engine, actor: str, child_only: bool = False, limit: int = 50
) -> list[SearchHit]:
    """Full-text search (SQLite FTS5, ranked; elsewhere a case-insensitive match)."""
    with session_scope(engine) as session:
        if engine.dialect.name == "sqlite":
            hits = _fts_hits(session, query_text, child_only, limit)
        else:
            hits = _like_hits(session, query_text, child_only, limit)
        record(
            session, actor=actor, action="search", details={"text": query_text, "hits": len(hits)}
        )
    return hits


_FTS_SQL = """
SELECT s.clip_id, c.file_name, s.start_s, s.end_s,
       snippet(transcript_fts, 0, '[', ']', '…', 12) AS snippet,
       coalesce(s.speaker_child_probability, s.child_probability)
FROM transcript_fts JOIN transcriptsegment s ON s.id = transcript_fts.rowid
JOIN clip c ON c.id = s.clip_id
WHERE transcript_fts MATCH :query {child}
ORDER BY bm25(transcript_fts), s.clip_id, s.start_s LIMIT :limit
"""


def _fts_hits(session: Session, query_text: str, child_only: bool, limit: int) -> list[SearchHit]:
    decision = "coalesce(s.speaker_child_probability, s.child_probability)"
    child = f"AND {decision} >= {CHILD_THRESHOLD}" if child_only else ""
    sql = text(_FTS_SQL.format(child=child))
    rows = session.connection().execute(sql, {"query": fts_query(query_text), "limit": limit})
    return [SearchHit(*row) for row in rows]


def fts_query(query_text: str) -> str:
    """Each word as a quoted FTS5 term, so user punctuation can never be FTS syntax."""
    words = [w.replace('"', '""') for w in query_text.split()]
    if not words:
        raise BwvError("empty search text")
    return " ".join(f'"{w}"' for w in words)


def _like_hits(session: Session, query_text: str, child_only: bool, limit: int) -> list[SearchHit]:
    query = (
        select(TranscriptSegment, Clip.file_name)
        .join(Clip, col(Clip.id) == TranscriptSegment.clip_id)
        .where(col(TranscriptSegment.text).ilike(f"%{query_text}%"))
        .limit(limit)
    )
    decision = func.coalesce(
        col(TranscriptSegment.speaker_child_probability), col(TranscriptSegment.child_probability)
    )
    if child_only:
        query = query.where(decision >= CHILD_THRESHOLD)
    return [
        SearchHit(s.clip_id, name, s.start_s, s.end_s, s.text, decision_probability(s))
        for s, name in session.exec(query).all()
    ]


def render_transcript(reference: str, fmt: str, *, engine: Engine, actor: str) -> str:
    """The transcript as plain text, SubRip, WebVTT or JSON."""
    from ingest.transcript_formats import render

    with session_scope(engine) as session:
        clip = find_clip(session, reference)
        segments = _segments(session, clip)
        record(
            session,
            actor=actor,
            action="transcript",
            object_ids=[f"clip:{clip.id}"],
            details={"format": fmt},
        )
    return render(segments, fmt, clip.file_name)
