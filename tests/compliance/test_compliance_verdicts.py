"""Each verdict, reason and officer finding, from rows written to a real catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from compliance_helpers import (
    add_assignment,
    add_attendance,
    add_clip,
    add_officer,
    add_segment,
    relink,
    standard_incident,
)
from sqlalchemy import Engine

from bwv.core.db import session_scope
from compliance.facts import Period
from compliance.policy import Policy
from compliance.report import build_report
from compliance.verdicts import IncidentVerdict


def verdict_of(engine: Engine, ref: str = "INC-1", policy: Path | None = None) -> IncidentVerdict:
    relink(engine)
    report = build_report(engine=engine, period=Period(), policy_path=policy)
    return next(v for v in report.verdicts if v.incident.incident_ref == ref)


def with_clip(engine: Engine, **clip: object) -> IncidentVerdict:
    """INC-1 with one CAM1 clip covering the whole attendance unless told otherwise."""
    values: dict[str, object] = {"serial": "CAM1", "start": "2024-01-16T10:00:10", "seconds": 590}
    values.update(clip)
    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, **values)  # type: ignore[arg-type]
    return verdict_of(engine)


def test_compliant_when_enough_child_speech_is_recorded(engine: Engine) -> None:
    verdict = with_clip(engine, speech=40.0, child=2.5)
    assert verdict.verdict == "compliant"
    assert verdict.reasons == []
    assert verdict.findings == []
    assert verdict.attendances[0].recorded and verdict.attendances[0].child_voice


def test_no_footage_is_non_compliant_and_officer_not_recording(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
    verdict = verdict_of(engine)
    assert verdict.verdict == "non_compliant"
    assert [r.code for r in verdict.reasons] == ["NO_FOOTAGE"]
    assert verdict.reasons[0].evidence["attending"][0]["officer_id"] == "O1"
    [finding] = verdict.findings
    assert (finding.officer_id, finding.code) == ("O1", "NOT_RECORDING")
    assert finding.evidence["cameras"] == ["CAM1"]


def test_unreadable_footage_needs_review(engine: Engine) -> None:
    verdict = with_clip(engine, status="failed", seconds=None)
    assert verdict.verdict == "needs_review"
    [reason] = verdict.reasons
    assert reason.code == "FOOTAGE_UNREADABLE"
    assert reason.evidence["failures"][0]["failure_reason"] == "moov atom not found"
    assert [f.code for f in verdict.findings] == []  # started in time; its end is unknown


@pytest.mark.parametrize("audio", ["absent", "silent"])
def test_no_audio_is_non_compliant(engine: Engine, audio: str) -> None:
    verdict = with_clip(engine, audio=audio, speech=0.0)
    assert verdict.verdict == "non_compliant"
    [reason] = verdict.reasons
    assert reason.code == "NO_AUDIO"
    assert reason.evidence["audio"] == [
        {"clip_id": reason.evidence["clip_ids"][0], "audio_state": audio}
    ]


def test_no_speech_is_non_compliant(engine: Engine) -> None:
    verdict = with_clip(engine, audio="present", speech=0.0)
    assert verdict.verdict == "non_compliant"
    assert [r.code for r in verdict.reasons] == ["NO_SPEECH"]


def test_child_voice_not_detected_counts_only_confident_child_segments(engine: Engine) -> None:
    verdict = with_clip(engine, speech=30.0, child=1.5, adult_segment=10.0)
    assert verdict.verdict == "needs_review"
    [reason] = verdict.reasons
    assert reason.code == "CHILD_VOICE_NOT_DETECTED"
    assert reason.evidence["child_speech_seconds"] == 1.5
    assert reason.evidence["min_child_speech_s"] == 2.0


@pytest.mark.parametrize(
    ("alone", "speaker", "verdict"),
    [(0.95, 0.30, "needs_review"), (0.40, 0.80, "compliant"), (0.95, None, "compliant")],
)
def test_child_speech_is_judged_on_the_speaker_group(
    engine: Engine, alone: float, speaker: float | None, verdict: str
) -> None:
    """A confident segment of a voice that is an adult's overall does not count; a weak
    segment of a voice that is a child's overall does; ungrouped segments stand alone."""
    with session_scope(engine) as session:
        standard_incident(session)
        clip = add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590)
        add_segment(session, clip, 3.0, alone, speaker)
    assert verdict_of(engine).verdict == verdict


def test_policy_file_changes_the_child_speech_threshold(engine: Engine, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("min_child_speech_s = 1.0\n")
    with_clip(engine, speech=30.0, child=1.5)
    assert verdict_of(engine, policy=policy).verdict == "compliant"


@pytest.mark.parametrize(
    ("contact", "ages", "verdict"),
    [
        (False, "7", "not_applicable"),
        (True, "1;2", "not_applicable"),
        (True, "2;3", "non_compliant"),
        (True, "", "non_compliant"),
    ],
)
def test_applicability(engine: Engine, contact: bool, ages: str, verdict: str) -> None:
    with session_scope(engine) as session:
        standard_incident(session, ages=ages, child_contact=contact)
    result = verdict_of(engine)
    assert result.verdict == verdict
    if verdict == "not_applicable":
        assert result.reasons == [] and result.findings == []


@pytest.mark.parametrize(("start", "late"), [("10:01:00", False), ("10:01:01", True)])
def test_late_start_after_the_grace_period(engine: Engine, start: str, late: bool) -> None:
    verdict = with_clip(engine, start=f"2024-01-16T{start}", seconds=540, child=3.0)
    codes = [f.code for f in verdict.findings]
    assert ("LATE_START" in codes) is late
    if late:
        assert verdict.findings[0].evidence["delay_s"] == 61.0
    assert verdict.verdict == "compliant"  # a finding alone never changes the verdict


@pytest.mark.parametrize(("seconds", "early"), [(530, False), (529, True)])
def test_early_stop_before_leaving(engine: Engine, seconds: int, early: bool) -> None:
    # Starts 10:00:10; leaving is 10:10:00, so 530 s ends exactly 60 s before.
    verdict = with_clip(engine, seconds=seconds, child=3.0)
    codes = [f.code for f in verdict.findings]
    assert ("EARLY_STOP" in codes) is early
    if early:
        assert verdict.findings[0].evidence["gap_s"] == 61.0


def test_no_camera_for_an_officer_without_an_assignment(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_officer(session, "O2")
        add_attendance(session, "INC-1", "O2", "2024-01-16T10:02:00", "2024-01-16T10:05:00")
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590, child=3.0)
    verdict = verdict_of(engine)
    assert verdict.verdict == "compliant"
    [finding] = verdict.findings
    assert (finding.officer_id, finding.code) == ("O2", "NO_CAMERA")
    assert finding.evidence["cameras"] == []


def test_camera_returned_before_attendance_is_no_camera(engine: Engine) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_officer(session, "O3")
        add_assignment(session, "CAM3", "O3", "2024-01-01T00:00:00", "2024-01-15T00:00:00")
        add_attendance(session, "INC-1", "O3", "2024-01-16T10:00:00", "2024-01-16T10:05:00")
    codes = {(f.officer_id, f.code) for f in verdict_of(engine).findings}
    assert codes == {("O1", "NOT_RECORDING"), ("O3", "NO_CAMERA")}


def test_unreadable_and_silent_clips_give_no_audio_with_unreadable_evidence(
    engine: Engine,
) -> None:
    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", status="failed")
        add_clip(session, serial="CAM1", start="2024-01-16T10:03:00", audio="silent", speech=0)
    [reason] = verdict_of(engine).reasons
    assert reason.code == "NO_AUDIO"
    assert len(reason.evidence["unreadable_clip_ids"]) == 1


def test_worst_first_ordering(engine: Engine) -> None:
    from compliance_helpers import add_incident

    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:10", seconds=590, child=3.0)
        add_incident(session, "INC-2", "2024-01-17T09:00:00", child_contact=False)
        add_incident(session, "INC-3", "2024-01-18T09:00:00")
        add_incident(session, "INC-4", "2024-01-15T09:00:00")
    relink(engine)
    report = build_report(engine=engine, period=Period())
    order = [(v.verdict, v.incident.incident_ref) for v in report.verdicts]
    assert order == [
        ("non_compliant", "INC-4"),
        ("non_compliant", "INC-3"),
        ("compliant", "INC-1"),
        ("not_applicable", "INC-2"),
    ]
    assert report.non_compliant == 2


def test_default_policy_file_matches_built_in_defaults() -> None:
    from compliance.policy import DEFAULT_POLICY_FILE, load_policy

    assert load_policy(DEFAULT_POLICY_FILE).as_dict() | {"source": "built-in"} == (
        Policy().as_dict()
    )
