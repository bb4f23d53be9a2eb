"""The verdict on each incident, and the findings on each attending officer.

This is the rule book the issue defines, as pure functions over loaded facts: whether
the child's voice was expected (applicability), the first reason it was not captured
(which sets the verdict), and per officer whether and when they recorded. Each reason
and finding keeps its evidence (clip ids, officer, times, figures) so an inspector can
check the conclusion without re-running anything. Evidence holds JSON values and naive
UTC datetimes: a report may carry hundreds of thousands of times, and orjson writes
them (with the trailing Z) in C far faster than Python formats them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from compliance.facts import (
    AttendanceFacts,
    ClipFacts,
    Evidence,
    IncidentEvidence,
    IncidentFacts,
    LinkFacts,
    ReviewFacts,
)
from compliance.linking import AssignmentIndex
from compliance.policy import Policy
from compliance.rawtime import EPOCH
from compliance.response import Response, measure_response

COMPLIANT = "compliant"
NEEDS_REVIEW = "needs_review"
NON_COMPLIANT = "non_compliant"
NOT_APPLICABLE = "not_applicable"
SEVERITY = {NON_COMPLIANT: 0, NEEDS_REVIEW: 1, COMPLIANT: 2, NOT_APPLICABLE: 3}
VERDICTS = tuple(SEVERITY)

REASON_VERDICT = {
    "NO_FOOTAGE": NON_COMPLIANT,
    "FOOTAGE_UNREADABLE": NEEDS_REVIEW,
    "NO_AUDIO": NON_COMPLIANT,
    "NO_SPEECH": NON_COMPLIANT,
    "CHILD_VOICE_NOT_DETECTED": NEEDS_REVIEW,
}
REASONS = tuple(REASON_VERDICT)
FINDINGS = ("NOT_RECORDING", "LATE_START", "EARLY_STOP", "NO_CAMERA")
HEARD, NOT_HEARD = "heard", "not_heard"
# Evidence codes of a person's review of a clip, listed with every incident it touches.
REVIEW_CODES = {HEARD: "REVIEWED_CHILD_VOICE_HEARD", NOT_HEARD: "REVIEWED_NO_CHILD_VOICE"}


@dataclass(slots=True)
class Reason:
    code: str
    evidence: dict[str, Any]


@dataclass(slots=True)
class Finding:
    officer_id: str
    code: str
    evidence: dict[str, Any]


@dataclass(slots=True)
class AttendanceOutcome:
    """One officer at one applicable incident: the figures the consistency view counts."""

    officer_id: str
    arrived_at: datetime
    left_at: datetime
    cameras: list[str]
    clip_ids: list[int]
    recorded: bool
    child_voice: bool
    start_delay_s: float | None
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class IncidentVerdict:
    evidence: IncidentEvidence
    applicable: bool
    applicability: str
    verdict: str
    reasons: list[Reason]
    attendances: list[AttendanceOutcome]
    response: Response | None = None  # time to first arrival; None when not applicable
    findings: list[Finding] = field(init=False)

    def __post_init__(self) -> None:
        self.findings = [f for outcome in self.attendances for f in outcome.findings]

    @property
    def incident(self) -> IncidentFacts:
        return self.evidence.incident


def judge_all(evidence: Evidence, policy: Policy) -> list[IncidentVerdict]:
    """Every incident's verdict, worst first, then oldest first."""
    verdicts = [judge(item, policy, evidence.cameras) for item in evidence.incidents]
    return sorted(verdicts, key=_worst_first)


def _worst_first(verdict: IncidentVerdict) -> tuple[int, datetime, str]:
    incident = verdict.incident
    return (SEVERITY[verdict.verdict], incident.reported_at, incident.incident_ref)


def judge(item: IncidentEvidence, policy: Policy, cameras: AssignmentIndex) -> IncidentVerdict:
    applicable, applicability = is_applicable(item.incident, policy)
    if not applicable:
        return IncidentVerdict(item, False, applicability, NOT_APPLICABLE, [], [])
    reason = incident_reason(item, policy)
    outcomes = [_attendance(att, item.links, policy, cameras) for att in item.attendance]
    verdict = REASON_VERDICT[reason.code] if reason else COMPLIANT
    reasons = [reason] if reason else []
    response = measure_response(item, policy)
    return IncidentVerdict(item, True, applicability, verdict, reasons, outcomes, response)


def is_applicable(incident: IncidentFacts, policy: Policy) -> tuple[bool, str]:
    """Whether the child's voice was expected, and why (or why not) in words."""
    if not incident.child_contact:
        return False, "no child contact recorded"
    ages = [int(age) for age in incident.child_ages.split(";") if age.strip()]
    if not ages:
        return True, "child contact, ages unknown"
    if max(ages) >= policy.min_speaking_age:
        return True, f"child contact, a child aged {policy.min_speaking_age} or more"
    return False, f"every child is under {policy.min_speaking_age}"


def incident_reason(item: IncidentEvidence, policy: Policy) -> Reason | None:
    """The first reason the child's voice is not in the linked footage, or None."""
    clips = _distinct_clips(item.links)
    if not clips:
        return Reason("NO_FOOTAGE", {"attending": [_attended(a) for a in item.attendance]})
    readable = [clip for clip in clips if clip.readable]
    if not readable:
        return Reason("FOOTAGE_UNREADABLE", _unreadable_evidence(clips))
    if heard_by_reviewer(readable):
        return None  # a person heard the child, whatever the audio facts or classifier say
    audible = [clip for clip in readable if clip.audio_state == "present"]
    if not audible:
        return Reason("NO_AUDIO", _audio_evidence(readable, clips))
    speech = sum(clip.speech_seconds for clip in audible)
    if speech <= 0:
        return Reason("NO_SPEECH", {"clip_ids": _ids(audible), "speech_seconds": 0.0})
    child = sum(child_seconds(clip) for clip in audible)
    if child >= policy.min_child_speech_s:
        return None
    evidence = _child_evidence(audible, speech, child, policy)
    evidence["voice_rule"] = voice_rule(item.incident, policy)
    if evidence["voice_rule"] == OTHER_VOICE:
        evidence.update(_other_voice_evidence(audible))
        if policy.other_voice_compliant and (
            evidence["other_voice_seconds"] >= policy.min_child_speech_s
        ):
            return None
    return Reason("CHILD_VOICE_NOT_DETECTED", evidence)


CHILD_VOICE = "child_voice"
OTHER_VOICE = "other_voice"


def voice_rule(incident: IncidentFacts, policy: Policy) -> str:
    """Whose speech shows the child was heard: `child_voice` (speech attributed to a child)
    when a child of speaking age is younger than `policy.child_voice_age`; otherwise, or
    when no age is recorded, `other_voice` (speech by anyone but the camera wearers),
    because from about 12 many children sound like adults."""
    ages = [int(age) for age in incident.child_ages.split(";") if age.strip()]
    young = [a for a in ages if policy.min_speaking_age <= a < policy.child_voice_age]
    return CHILD_VOICE if young else OTHER_VOICE


def _other_voice_evidence(audible: list[ClipFacts]) -> dict[str, Any]:
    heard = [clip for clip in audible if clip.other_voice_seconds > 0]
    return {
        "other_voice_seconds": round(sum(clip.other_voice_seconds for clip in heard), 1),
        "other_voice": [
            {
                "clip_id": clip.clip_id,
                "seconds": round(clip.other_voice_seconds, 1),
                "first_at": _clip_time(clip, clip.other_voice_first_s),
            }
            for clip in heard
        ],
    }


def _clip_time(clip: ClipFacts, offset_s: float | None) -> datetime | None:
    if clip.started_at is None or offset_s is None:
        return None
    return clip.started_at + timedelta(seconds=round(offset_s, 3))


def heard_by_reviewer(clips: list[ClipFacts]) -> bool:
    """A person heard the child in one of these clips: that settles capture either way."""
    return any(reviewed_as(clip, HEARD) for clip in clips)


class Reviewed(Protocol):
    @property
    def review(self) -> ReviewFacts | None: ...


def reviewed_as(clip: Reviewed, decision: str) -> bool:
    """Whether a person's review of the clip is `decision` (heard or not_heard)."""
    return clip.review is not None and clip.review.decision == decision


def child_seconds(clip: ClipFacts) -> float:
    """The classifier's child seconds, unless a person found no child's voice in the clip."""
    if reviewed_as(clip, NOT_HEARD):
        return 0.0
    return clip.child_speech_seconds


def _distinct_clips(links: list[LinkFacts]) -> list[ClipFacts]:
    return [link.clip for link in distinct_links(links)]


def distinct_links(links: list[LinkFacts]) -> list[LinkFacts]:
    """Each linked clip once (a clip may link through two officers), in link order."""
    seen: dict[int, LinkFacts] = {}
    for link in links:
        seen.setdefault(link.clip.clip_id, link)
    return list(seen.values())


def _ids(clips: list[ClipFacts]) -> list[int]:
    return [clip.clip_id for clip in clips]


def _attended(attendance: AttendanceFacts) -> dict[str, Any]:
    return {
        "officer_id": attendance.officer_id,
        "arrived_at": attendance.arrived_at,
        "left_at": attendance.left_at,
    }


def _unreadable_evidence(clips: list[ClipFacts]) -> dict[str, Any]:
    return {
        "clip_ids": _ids(clips),
        "failures": [
            {"clip_id": c.clip_id, "file_name": c.file_name, "failure_reason": c.failure_reason}
            for c in clips
        ],
    }


def _audio_evidence(readable: list[ClipFacts], clips: list[ClipFacts]) -> dict[str, Any]:
    return {
        "clip_ids": _ids(readable),
        "audio": [{"clip_id": c.clip_id, "audio_state": c.audio_state} for c in readable],
        "unreadable_clip_ids": [c.clip_id for c in clips if not c.readable],
    }


def _child_evidence(
    audible: list[ClipFacts], speech: float, child: float, policy: Policy
) -> dict[str, Any]:
    return {
        "clip_ids": _ids(audible),
        "speech_seconds": round(speech, 1),
        "child_speech_seconds": round(child, 1),
        "min_child_speech_s": policy.min_child_speech_s,
        "child_probability_threshold": policy.child_probability_threshold,
        "reviewed_no_child_voice_clip_ids": [
            c.clip_id for c in audible if reviewed_as(c, NOT_HEARD)
        ],
    }


def _attendance(
    attendance: AttendanceFacts,
    links: list[LinkFacts],
    policy: Policy,
    cameras: AssignmentIndex,
) -> AttendanceOutcome:
    officer = attendance.officer_id
    own = [link.clip for link in links if link.officer_id == officer]
    arrived, left = attendance.arrived_at, attendance.left_at
    held = cameras.cameras_of(
        officer, (arrived - EPOCH).total_seconds(), (left - EPOCH).total_seconds()
    )
    first = next((clip for clip in own if clip.started_at is not None), None)  # sorted by start
    delay = _seconds(first.started_at, arrived) if first else None
    child = sum(child_seconds(clip) for clip in own if clip.audio_state == "present")
    captured = bool(own) and (child >= policy.min_child_speech_s or heard_by_reviewer(own))
    return AttendanceOutcome(
        officer,
        arrived,
        left,
        held,
        [clip.clip_id for clip in own],
        bool(own),
        captured,
        delay,
        officer_findings(attendance, own, (first, delay), held, policy),
    )


def _seconds(later: datetime | None, earlier: datetime) -> float:
    assert later is not None
    return round((later - earlier).total_seconds(), 1)


def officer_findings(
    attendance: AttendanceFacts,
    own: list[ClipFacts],
    start: tuple[ClipFacts | None, float | None],
    held: list[str],
    policy: Policy,
) -> list[Finding]:
    """NO_CAMERA or NOT_RECORDING when nothing was linked, else LATE_START / EARLY_STOP.

    `start` is the officer's first timed clip and its delay after arrival, if any.
    """
    officer = attendance.officer_id
    if not own:
        code = "NOT_RECORDING" if held else "NO_CAMERA"
        times = {"arrived_at": attendance.arrived_at, "left_at": attendance.left_at}
        return [Finding(officer, code, {**times, "cameras": held})]
    found = (_late_start(attendance, *start, policy), _early_stop(attendance, own, policy))
    return [finding for finding in found if finding is not None]


def _late_start(
    attendance: AttendanceFacts, first: ClipFacts | None, delay: float | None, policy: Policy
) -> Finding | None:
    if first is None or delay is None or delay <= policy.start_grace_s:
        return None
    evidence = {
        "clip_id": first.clip_id,
        "arrived_at": attendance.arrived_at,
        "first_clip_started_at": first.started_at,
        "delay_s": delay,
        "start_grace_s": policy.start_grace_s,
    }
    return Finding(attendance.officer_id, "LATE_START", evidence)


def _early_stop(
    attendance: AttendanceFacts, own: list[ClipFacts], policy: Policy
) -> Finding | None:
    """Judged on the latest clip end; a clip of unknown length cannot show a stop."""
    last, last_end = own[0], datetime.min
    for clip in own:
        if clip.ended_at is None:
            return None
        if clip.ended_at >= last_end:
            last, last_end = clip, clip.ended_at
    gap = _seconds(attendance.left_at, last_end)
    if gap <= policy.stop_grace_s:
        return None
    evidence = {
        "clip_id": last.clip_id,
        "left_at": attendance.left_at,
        "last_clip_ended_at": last_end,
        "gap_s": gap,
        "stop_grace_s": policy.stop_grace_s,
    }
    return Finding(attendance.officer_id, "EARLY_STOP", evidence)
