"""The rules themselves, on plain values: no model, no media, no database."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from bwv.core.child_speech import child_seconds, decision_probability, is_child, speaker_label
from bwv.core.csvsafe import write_csv
from bwv.core.timeutil import as_utc, iso_z, parse_time
from compliance.facts import (
    AttendanceFacts,
    ClipFacts,
    IncidentEvidence,
    IncidentFacts,
    LinkFacts,
)
from compliance.linking import AssignmentIndex
from compliance.policy import Policy
from compliance.verdicts import judge
from ingest.voice.speakers import SpeakerSpace, group_speakers

T0 = datetime(2024, 1, 16, 10, 0)  # naive UTC, as the compliance facts hold times


def at(minutes: float) -> datetime:
    return datetime.fromtimestamp(T0.replace(tzinfo=UTC).timestamp() + minutes * 60, UTC).replace(
        tzinfo=None
    )


def clip(clip_id: int, start: float, end: float, *, child: float = 0.0, **kw: object) -> ClipFacts:
    values: dict[str, object] = {
        "clip_id": clip_id, "file_name": f"{clip_id}.mp4", "status": "ingested",
        "failure_reason": None, "device_serial": "CAM1", "started_at": at(start),
        "ended_at": at(end), "audio_state": "present", "speech_seconds": 10.0,
        "child_speech_seconds": child,
    } | kw  # fmt: skip
    return ClipFacts(**values)  # type: ignore[arg-type]


def incident(*clips: ClipFacts, ages: str = "7", contact: bool = True) -> IncidentEvidence:
    facts = IncidentFacts("INC-1", "Domestic", at(-10), "here", contact, ages, "")
    return IncidentEvidence(
        facts,
        attendance=[AttendanceFacts("O1", at(0), at(10))],
        links=[LinkFacts(c, "O1", 60.0, False, "auto") for c in clips],
    )


CAMERAS = AssignmentIndex(
    starts={"CAM1": [0.0]},
    by_camera={"CAM1": [(0.0, float("inf"), "O1")]},
    by_officer={"O1": [(0.0, float("inf"), "CAM1")]},
)


@pytest.mark.parametrize(
    ("evidence", "verdict", "reasons"),
    [
        (incident(clip(1, 0.5, 9.5, child=3.0)), "compliant", []),
        (incident(clip(1, 0.5, 9.5, child=1.0)), "needs_review", ["CHILD_VOICE_NOT_DETECTED"]),
        (incident(), "non_compliant", ["NO_FOOTAGE"]),
        (incident(clip(1, 0.5, 9.5, audio_state="silent")), "non_compliant", ["NO_AUDIO"]),
        (incident(clip(1, 0.5, 9.5, speech_seconds=0.0)), "non_compliant", ["NO_SPEECH"]),
        (incident(clip(1, 0.5, 9.5, status="failed")), "needs_review", ["FOOTAGE_UNREADABLE"]),
        (incident(clip(1, 0.5, 9.5), ages="1;2"), "not_applicable", []),
        (incident(clip(1, 0.5, 9.5), contact=False), "not_applicable", []),
    ],
)
def test_verdict_rules_on_facts(
    evidence: IncidentEvidence, verdict: str, reasons: list[str]
) -> None:
    judged = judge(evidence, Policy(), CAMERAS)
    assert (judged.verdict, [r.code for r in judged.reasons]) == (verdict, reasons)


@pytest.mark.parametrize(
    ("start", "end", "findings"),
    [(0.5, 9.5, []), (2.0, 9.5, ["LATE_START"]), (0.5, 8.0, ["EARLY_STOP"])],
)
def test_officer_findings_on_facts(start: float, end: float, findings: list[str]) -> None:
    judged = judge(incident(clip(1, start, end, child=3.0)), Policy(), CAMERAS)
    assert [f.code for f in judged.findings] == findings


@dataclass
class Segment:
    start_s: float
    end_s: float
    speech_s: float | None
    child_probability: float | None
    speaker_child_probability: float | None


def test_child_speech_is_judged_on_the_speaker_and_counts_speech_inside() -> None:
    grouped = Segment(0.0, 4.0, 3.0, child_probability=0.2, speaker_child_probability=0.9)
    alone = Segment(5.0, 7.0, None, child_probability=0.7, speaker_child_probability=None)
    unscored = Segment(8.0, 9.0, None, None, None)
    assert decision_probability(grouped) == 0.9 and decision_probability(unscored) is None
    assert [is_child(s, 0.65) for s in (grouped, alone, unscored)] == [True, True, False]
    assert child_seconds([grouped, alone, unscored], 0.65) == 5.0
    assert child_seconds([grouped, alone], 0.8) == 3.0


def test_speaker_groups_are_numbered_from_s1() -> None:
    assert [speaker_label(g) for g in (0, 1, 9, None)] == ["S1", "S2", "S10", "-"]


def test_naive_times_are_local_and_offsets_are_honoured() -> None:
    assert parse_time("2024-01-16T10:00:00") == datetime(2024, 1, 16, 10, 0, tzinfo=UTC)
    assert parse_time("2024-07-16T10:00:00") == datetime(2024, 7, 16, 9, 0, tzinfo=UTC)
    assert parse_time("2024-07-16T10:00:00+02:00") == datetime(2024, 7, 16, 8, 0, tzinfo=UTC)
    assert iso_z(parse_time("2024-07-16T10:00:00Z")) == "2024-07-16T10:00:00Z"
    assert as_utc(datetime(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_time("16/07/2024")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠"])
def test_no_csv_cell_can_start_a_formula(start: str) -> None:
    text = write_csv([["name", f"{start}SUM(A1)"], [f"{start}1", "plain"]])
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert cells == ["name", f"'{start}SUM(A1)", f"'{start}1", "plain"]


def test_clustering_finds_two_well_separated_voices_and_absorbs_a_short_stray() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    points = np.vstack([a + 0.05 * rng.normal(size=(5, 8)), b + 0.05 * rng.normal(size=(5, 8))])
    stray = (a + b) / 2 + 0.5 * rng.normal(size=8)
    space = SpeakerSpace(np.zeros(8), np.eye(8), max_distance=0.5, min_group_s=4.0)
    seconds = np.array([3.0] * 10 + [1.0])
    labels = group_speakers(np.vstack([points, stray]), seconds, space)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:10])) == 1
    assert labels[0] != labels[5] and labels[10] in (labels[0], labels[5])
