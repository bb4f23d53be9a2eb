"""Reading the catalogue: listing clips, one clip in full, transcript search and exports.

Each function opens its own transaction at the boundary, returns plain dataclasses (the
JSON contract of `bwv clips/show/search`) and records that the data was consulted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, column, func, literal_column, table, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwv.core.audit import record, record_committed
from bwv.core.child_speech import (
    child_seconds,
    child_seconds_sql,
    decision_probability,
    decision_sql,
    is_child,
    is_child_sql,
)
from bwv.core.clip_ref import find_clip
from bwv.core.db import read_scope, session_scope
from bwv.core.errors import BwvError, NotFound
from bwv.core.models import Clip, ClipField, SpeechRegion, TranscriptSegment
from bwv.core.timeutil import iso_z


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
    wearer: bool | None = None  # the speaker group is the camera wearer's


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


def list_clips(
    *, engine: Engine, actor: str, clip_filter: ClipFilter, threshold: float
) -> list[ClipSummary]:
    """Clips matching the filter, each with its child seconds at `threshold`."""
    with session_scope(engine) as session:
        rows = clip_summaries(session, clip_filter, threshold)
        record(
            session,
            actor=actor,
            action="list",
            details={"filter": clip_filter.__dict__, "count": len(rows)},
        )
    return rows


def clip_summaries(
    session: Session, clip_filter: ClipFilter, threshold: float
) -> list[ClipSummary]:
    c = Clip.__table__.c  # type: ignore[attr-defined]
    query = select(Clip, child_seconds_sql(c.id, threshold)).order_by(c.started_at, c.id)
    if clip_filter.device:
        query = query.where(c.device_serial == clip_filter.device)
    if clip_filter.officer:
        query = query.where(c.officer_id == clip_filter.officer)
    if clip_filter.since:
        query = query.where(c.ended_at >= clip_filter.since)
    if clip_filter.until:
        query = query.where(c.started_at <= clip_filter.until)
    if clip_filter.failed:
        query = query.where(c.status == "failed")
    return [_summary(clip, child) for clip, child in session.exec(query).all()]


def _summary(clip: Clip, child: float | None) -> ClipSummary:
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
        child_speech_seconds=round(child or 0.0, 3) if clip.transcribed else None,
        failure_reason=clip.failure_reason,
    )


def clip_detail(reference: str, *, engine: Engine, actor: str, threshold: float) -> ClipDetail:
    """A clip in full; the view is audited in its own short transaction after the read, so
    readers never hold the catalogue's write lock (the web serves many at once)."""
    with read_scope(engine) as session:
        clip_id = find_clip(session, reference).id
        assert clip_id is not None
        detail = read_clip_detail(session, clip_id, threshold)
    audit_clip_view(engine, detail, actor=actor)
    return detail


def _by_clip(model: Any, ordered: bool = True) -> Any:
    """A clip's rows of `model` as one statement built once: the web shows a clip on
    every request, and building a statement costs more than SQLite running it."""
    t = model.__table__
    query = sa_select(t).where(t.c.clip_id == bindparam("clip_id"))
    return query.order_by(t.c.start_s, t.c.id) if ordered else query


_CLIP = sa_select(Clip.__table__).where(Clip.__table__.c.id == bindparam("clip_id"))  # type: ignore[attr-defined]
_SEGMENTS = _by_clip(TranscriptSegment)
_REGIONS = _by_clip(SpeechRegion)
_FIELDS = _by_clip(ClipField, ordered=False)


def read_clip_detail(session: Session, clip_id: int, threshold: float) -> ClipDetail:
    """A clip in full, read in the caller's transaction as plain rows (not audited here)."""
    run = session.connection().execute
    key = {"clip_id": clip_id}
    clip = run(_CLIP, key).first()
    if clip is None:
        raise NotFound(f"no clip {clip_id} in the catalogue")
    segments = run(_SEGMENTS, key).all()
    fields = run(_FIELDS, key).all()
    return ClipDetail(
        clip=_clip_dict(dict(clip._mapping), segments, threshold),
        provenance={r.field: _field(r) for r in fields},
        speech_regions=[(r.start_s, r.end_s) for r in run(_REGIONS, key)],
        transcript=segment_views(segments, threshold),
    )


def audit_clip_view(engine: Engine, detail: ClipDetail, *, actor: str) -> None:
    """Showing a clip is audited, committed before the clip is shown."""
    clip_id = detail.clip["id"]
    record_committed(engine, actor=actor, action="show", object_ids=[f"clip:{clip_id}"])


def _field(row: Any) -> dict[str, str]:
    return {"value": row.value, "source": row.source, "confidence": row.confidence}


def _clip_dict(data: dict[str, Any], segments: Sequence[Any], threshold: float) -> dict[str, Any]:
    data["tags"] = json.loads(data.pop("tags_json") or "{}")
    for key in ("started_at", "ended_at", "ingested_at"):
        data[key] = iso_z(data[key])
    transcribed = data["transcribed"]
    data["child_speech_seconds"] = child_seconds(segments, threshold) if transcribed else None
    data["child_probability_threshold"] = threshold
    return data


def _ordered(session: Session, model: Any, clip: Clip) -> list[Any]:
    query = select(model).where(model.clip_id == clip.id).order_by(model.start_s, model.id)
    return list(session.exec(query).all())


def segment_views(segments: Sequence[Any], threshold: float) -> list[SegmentView]:
    return [
        SegmentView(
            s.start_s,
            s.end_s,
            s.text,
            s.confidence,
            s.child_probability,
            is_child(s, threshold),
            s.speaker,
            s.speaker_child_probability,
            s.wearer,
        )
        for s in segments
    ]


def search_transcripts(
    query_text: str,
    *,
    engine: Engine,
    actor: str,
    threshold: float,
    child_only: bool = False,
    limit: int = 50,
) -> list[SearchHit]:
    """Full-text search, ranked: SQLite FTS5 or PostgreSQL's `tsvector` index (the same
    words match: every word given, stemmed); elsewhere a case-insensitive match."""
    child = threshold if child_only else None
    with session_scope(engine) as session:
        if engine.dialect.name == "sqlite":
            hits = _fts_hits(session, query_text, child, limit)
        elif engine.dialect.name == "postgresql":
            hits = _tsvector_hits(session, query_text, child, limit)
        else:
            hits = _like_hits(session, query_text, child, limit)
        record(
            session, actor=actor, action="search", details={"text": query_text, "hits": len(hits)}
        )
    return hits


# FTS5's functions and MATCH take the virtual table's own name as their first operand.
_FTS: Any = literal_column("transcript_fts")
_FTS_TABLE = table("transcript_fts", column("rowid"))


def _fts_hits(
    session: Session, query_text: str, child: float | None, limit: int
) -> list[SearchHit]:
    segment, clip = TranscriptSegment.__table__, Clip.__table__  # type: ignore[attr-defined]
    s, c = segment.c, clip.c
    query = (
        sa_select(
            s.clip_id,
            c.file_name,
            s.start_s,
            s.end_s,
            func.snippet(_FTS, 0, "[", "]", "…", 12),
            decision_sql(s),
        )
        .select_from(
            _FTS_TABLE.join(segment, s.id == _FTS_TABLE.c.rowid).join(clip, c.id == s.clip_id)
        )
        .where(_FTS.op("MATCH")(fts_query(query_text)))
        .order_by(func.bm25(_FTS), s.clip_id, s.start_s)
        .limit(limit)
    )
    if child is not None:
        query = query.where(is_child_sql(s, child))
    return [SearchHit(*row) for row in session.execute(query)]


def fts_query(query_text: str) -> str:
    """Each word as a quoted FTS5 term, so user punctuation can never be FTS syntax."""
    words = [w.replace('"', '""') for w in _search_words(query_text)]
    return " ".join(f'"{w}"' for w in words)


# Revision 0011's text search configuration: English stems, no stop words (as FTS5).
_CONFIG: Any = literal_column("'bwv_search'::regconfig")
_VECTOR: Any = literal_column("transcriptsegment.search_vector")
_TOKENS: Any = literal_column("transcriptsegment.search_tokens")
# FTS5's snippet: the match in brackets, about a dozen words around it.
_HEADLINE = "StartSel=[, StopSel=], MaxWords=12, MinWords=5, MaxFragments=1, FragmentDelimiter=…"
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25() constants
_UNNESTED: Any = func.unnest(_VECTOR).table_valued("lexeme", "positions", "weights").alias("u")


def _tsvector_hits(
    session: Session, query_text: str, child: float | None, limit: int
) -> list[SearchHit]:
    """The FTS5 rules on PostgreSQL: each word a phrase (as `fts_query` quotes it), all
    required, a word without letters or digits ignored; ranked by FTS5's BM25, then clip
    and time."""
    words = _lexemes(session, _search_words(query_text))
    if not words:
        return []
    wanted: Any = func.phraseto_tsquery(_CONFIG, words[0][0])
    for word, _lexeme in words[1:]:
        wanted = wanted.op("&&")(func.phraseto_tsquery(_CONFIG, word))
    s, c = TranscriptSegment.__table__.c, Clip.__table__.c  # type: ignore[attr-defined]
    query = (
        sa_select(
            s.clip_id, c.file_name, s.start_s, s.end_s,
            func.ts_headline(_CONFIG, s.text, wanted, _HEADLINE), decision_sql(s),
        )
        .select_from(TranscriptSegment.__table__.join(Clip.__table__, c.id == s.clip_id))  # type: ignore[attr-defined]
        .where(_VECTOR.op("@@")(wanted))
        .order_by(_bm25(session, words).desc(), s.clip_id, s.start_s)
        .limit(limit)
    )  # fmt: skip
    if child is not None:
        query = query.where(is_child_sql(s, child))
    return [SearchHit(*row) for row in session.execute(query)]


_FIRST_LEXEME = text(
    "SELECT lexeme FROM unnest(to_tsvector('bwv_search'::regconfig, :word)) "
    "ORDER BY positions[1] LIMIT 1"
)


def _lexemes(session: Session, words: list[str]) -> list[tuple[str, str]]:
    """Each word with its first stemmed lexeme (whose count stands for the phrase's);
    a word with none (punctuation only) is left out, as FTS5 ignores an empty phrase."""
    found = []
    for word in words:
        lexeme = session.execute(_FIRST_LEXEME, {"word": word}).scalar()
        if lexeme:
            found.append((word, str(lexeme)))
    return found


def _bm25(session: Session, words: list[tuple[str, str]]) -> Any:
    """FTS5's score, as an SQL expression: for each word, its inverse document frequency
    times its saturated frequency in the segment, normalised by the segment's length."""
    total, average = session.execute(
        sa_select(func.count(), func.avg(_TOKENS)).select_from(TranscriptSegment.__table__)  # type: ignore[attr-defined]
    ).one()
    length = BM25_K1 * (1 - BM25_B + BM25_B * _TOKENS / float(average or 1))
    score: Any = literal_column("0.0")
    for word, lexeme in words:
        found = session.execute(
            sa_select(func.count())
            .select_from(TranscriptSegment.__table__)  # type: ignore[attr-defined]
            .where(_VECTOR.op("@@")(func.phraseto_tsquery(_CONFIG, word)))
        ).scalar_one()
        idf = max(math.log((total - found + 0.5) / (found + 0.5)), 1e-6)
        frequency = func.coalesce(
            sa_select(func.cardinality(literal_column("u.positions")))
            .select_from(_UNNESTED)
            .where(literal_column("u.lexeme") == lexeme)
            .scalar_subquery(),
            0,
        )  # fmt: skip
        score = score + idf * frequency * (BM25_K1 + 1) / (frequency + length)
    return score


def _search_words(query_text: str) -> list[str]:
    words = query_text.split()
    if not words:
        raise BwvError("empty search text")
    return words


def _like_hits(
    session: Session, query_text: str, child: float | None, limit: int
) -> list[SearchHit]:
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    query = (
        select(TranscriptSegment, Clip.file_name)
        .join(Clip, col(Clip.id) == TranscriptSegment.clip_id)
        .where(col(TranscriptSegment.text).ilike(f"%{query_text}%"))
        .limit(limit)
    )
    if child is not None:
        query = query.where(is_child_sql(s, child))
    return [
        SearchHit(seg.clip_id, name, seg.start_s, seg.end_s, seg.text, decision_probability(seg))
        for seg, name in session.exec(query).all()
    ]


def render_transcript(
    reference: str, fmt: str, *, engine: Engine, actor: str, threshold: float
) -> str:
    """The transcript as plain text, SubRip, WebVTT or JSON."""
    with session_scope(engine) as session:
        clip = find_clip(session, reference)
        rendered = transcript_text(session, clip, fmt, threshold)
        record(
            session,
            actor=actor,
            action="transcript",
            object_ids=[f"clip:{clip.id}"],
            details={"format": fmt},
        )
    return rendered


def transcript_text(session: Session, clip: Clip, fmt: str, threshold: float) -> str:
    """A clip's transcript in `fmt`, read in the caller's transaction (not audited here)."""
    from ingest.transcript_formats import render

    segments = segment_views(_ordered(session, TranscriptSegment, clip), threshold)
    return render(segments, fmt, clip.file_name)
