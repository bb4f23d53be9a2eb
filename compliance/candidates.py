"""Where to listen first when no child's voice was found: the likeliest child segments.

`CHILD_VOICE_NOT_DETECTED` is a judgement an inspector has to check by ear, and a clip
can run for an hour. So its evidence lists the few transcript segments of the incident's
clips that came closest to the threshold (by the probability child speech is judged on,
`bwv.core.child_speech.decision_sql`), with their clip, times and probabilities, and a
review opens at them. Loaded after judging, in one query for a whole batch of verdicts,
and only for the verdicts that carry the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from bwv.core.child_speech import decision_sql
from bwv.core.models import TranscriptSegment
from compliance.verdicts import IncidentVerdict

REASON = "CHILD_VOICE_NOT_DETECTED"
CANDIDATES = 3  # segments listed per incident
_BATCH = 500  # clip ids per query (bound parameters stay well under SQLite's limit)


def attach_candidates(session: Session, verdicts: Iterable[IncidentVerdict]) -> None:
    """Adds `candidates` to the evidence of each `CHILD_VOICE_NOT_DETECTED` reason."""
    reasons = [
        (verdict, reason)
        for verdict in verdicts
        for reason in verdict.reasons
        if reason.code == REASON
    ]
    clip_ids = sorted({i for _, reason in reasons for i in reason.evidence["clip_ids"]})
    best = _best_segments(session, clip_ids)
    for verdict, reason in reasons:
        starts = {link.clip.clip_id: link.clip.started_at for link in verdict.evidence.links}
        found = _ranked(best, reason.evidence["clip_ids"])
        reason.evidence["candidates"] = [_timed(row, starts) for row in found]


def likeliest_segments(session: Session, clip_ids: list[int]) -> list[dict[str, Any]]:
    """The clips' `CANDIDATES` segments likeliest to be a child's, likeliest first."""
    return _ranked(_best_segments(session, clip_ids), clip_ids)


def _ranked(best: dict[int, list[dict[str, Any]]], clip_ids: list[int]) -> list[dict[str, Any]]:
    found = [row for i in clip_ids for row in best.get(i, [])]
    found.sort(key=lambda row: (-row["child_probability"], row["clip_id"], row["start_s"]))
    return found[:CANDIDATES]


def _best_query(chosen: Any) -> Any:
    """Built once: the web's incident page asks for one incident's clips on each request."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    probability = decision_sql(s)
    rank = func.row_number().over(partition_by=s.clip_id, order_by=(probability.desc(), s.start_s))
    ranked = (
        select(s.clip_id, s.start_s, s.end_s, s.speaker, probability.label("p"), rank.label("r"))
        .where(chosen(s.clip_id), probability.is_not(None))
        .subquery()
    )
    return select(ranked).where(ranked.c.r <= CANDIDATES)


# SQLite binds each clip id (a batch at a time, under its parameter limit). PostgreSQL
# takes a report chunk's ids as one array: a list of bound values made each query's text
# long and new, and the driver parsing it took longer than the database answering it.
_BEST = _best_query(lambda clip_id: clip_id.in_(bindparam("ids", expanding=True)))
_BEST_ARRAY = _best_query(lambda clip_id: clip_id == any_(bindparam("ids", type_=ARRAY(Integer))))


def _best_segments(session: Session, clip_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per clip, its `CANDIDATES` segments of highest decision probability."""
    found: dict[int, list[dict[str, Any]]] = {}
    query, size = _BEST, _BATCH
    if session.get_bind().dialect.name == "postgresql":
        query, size = _BEST_ARRAY, max(len(clip_ids), 1)
    for first in range(0, len(clip_ids), size):
        batch = {"ids": clip_ids[first : first + size]}
        for clip_id, start, end, speaker, p, _ in session.execute(query, batch):
            found.setdefault(clip_id, []).append(
                {"clip_id": clip_id, "start_s": start, "end_s": end, "speaker": speaker,
                 "child_probability": round(float(p), 4)}
            )  # fmt: skip
    return found


def _timed(row: dict[str, Any], starts: dict[int, Any]) -> dict[str, Any]:
    """The segment with its wall-clock start (naive UTC, as evidence holds times)."""
    started = starts.get(row["clip_id"])
    at = started + timedelta(seconds=round(row["start_s"], 3)) if started else None
    return {**row, "at": at}
