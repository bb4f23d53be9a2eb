"""What counts as a child speaking: one definition for Python and for SQL.

A transcript segment is judged on its speaker group's pooled child probability when ingest
grouped it, else on its own; it counts as child speech at or above the threshold in force
(the policy's, defaulting to `DEFAULT_THRESHOLD`); and it contributes the seconds of speech
inside it (`speech_s`), else its length. `bwv show`, `clips`, `search`, `incident` and
`report` all compute child seconds through this module, so they agree for one policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import func, select

from bwv.core.models import TranscriptSegment

# The shipped classifier's threshold on the speaker-grouped probability, and the policy's
# default: in simulated adults-only conversations 0.65 calls a child about half as often
# as 0.5 (see ingest/data/CHILD_VOICE_MODEL_CARD.md).
DEFAULT_THRESHOLD = 0.65


class ScoredSegment(Protocol):
    start_s: float
    end_s: float
    speech_s: float | None
    child_probability: float | None
    speaker_child_probability: float | None


def decision_probability(segment: Any) -> float | None:
    """The probability a segment is judged on: its speaker's pooled one, else its own."""
    if segment.speaker_child_probability is not None:
        return float(segment.speaker_child_probability)
    return None if segment.child_probability is None else float(segment.child_probability)


def speaker_label(speaker: int | None) -> str:
    """A speaker group as people read it everywhere (`S1` is group 0), or "-" for none."""
    return "-" if speaker is None else f"S{speaker + 1}"


def is_child(segment: Any, threshold: float) -> bool:
    probability = decision_probability(segment)
    return probability is not None and probability >= threshold


def speech_seconds(segment: Any) -> float:
    """Seconds of speech in the segment: voice activity inside it, else its length."""
    if segment.speech_s is not None:
        return float(segment.speech_s)
    return float(segment.end_s - segment.start_s)


def child_seconds(segments: Iterable[Any], threshold: float) -> float:
    return round(sum(speech_seconds(s) for s in segments if is_child(s, threshold)), 3)


# The same rules as SQL expressions over a transcript-segment table's columns `c`.


def decision_sql(c: Any) -> Any:
    return func.coalesce(c.speaker_child_probability, c.child_probability)


def speech_seconds_sql(c: Any) -> Any:
    return func.coalesce(c.speech_s, c.end_s - c.start_s)


def is_child_sql(c: Any, threshold: float) -> Any:
    return decision_sql(c) >= threshold


def child_seconds_sql(clip_id: Any, threshold: float) -> Any:
    """A scalar subquery: seconds of child speech in the clip `clip_id` (NULL when none)."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    query = select(func.sum(speech_seconds_sql(s))).where(s.clip_id == clip_id)
    return query.where(is_child_sql(s, threshold)).scalar_subquery()


# Speech by someone other than the camera's wearer: segments of a speaker group that ingest
# found was not the wearer's (`wearer` false; unknown for clips ingested before wearers
# were marked, which count as no such speech). The evidence for older children's voices.


def is_other_voice(segment: Any) -> bool:
    return getattr(segment, "wearer", None) is False


def is_other_voice_sql(c: Any) -> Any:
    return c.wearer.is_(False)


def other_voice_seconds_sql(clip_id: Any) -> Any:
    """A scalar subquery: seconds of speech by non-wearers in the clip (NULL when none)."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    query = select(func.sum(speech_seconds_sql(s))).where(s.clip_id == clip_id)
    return query.where(is_other_voice_sql(s)).scalar_subquery()


def other_voice_first_sql(clip_id: Any) -> Any:
    """A scalar subquery: where in the clip (seconds) a non-wearer first speaks."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    query = select(func.min(s.start_s)).where(s.clip_id == clip_id, is_other_voice_sql(s))
    return query.scalar_subquery()


def voice_figures_lateral(clip_id: Any, threshold: float) -> Any:
    """The three subqueries above as one lateral subquery (PostgreSQL), with columns
    `child`, `other` and `other_first`: a report reads them for every linked clip, and
    one pass over a clip's segments costs a third of three."""
    s = TranscriptSegment.__table__.c  # type: ignore[attr-defined]
    speech, other = speech_seconds_sql(s), is_other_voice_sql(s)
    return (
        select(
            func.sum(speech).filter(is_child_sql(s, threshold)).label("child"),
            func.sum(speech).filter(other).label("other"),
            func.min(s.start_s).filter(other).label("other_first"),
        )
        .where(s.clip_id == clip_id)
        .lateral()
    )
