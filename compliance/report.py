"""The compliance report: every incident's verdict for a period, and its JSON contract.

`build_report` is the one entry point the CLI, the demo and the benchmark call: it
loads the evidence for the period in a single transaction, judges it against the
policy (`bwv.services.compliance` logs the disclosure). The JSON produced by `report_json`
and `consistency_json` is a stable contract documented in REPORT_CONTRACT.md; the
other formats (table, CSV, HTML) are renderings of the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlmodel import Session

from bwv.core.db import read_scope, session_scope, shared_snapshot
from bwv.core.errors import NotFound
from bwv.core.models import Incident, utc_now
from bwv.core.timeutil import checked_zone, iso_z
from compliance.candidates import attach_candidates
from compliance.consistency import (
    GROUPINGS,
    ConsistencyView,
    GroupStats,
    consistency,
    force_stats,
)
from compliance.facts import (
    LinkFacts,
    OfficerFacts,
    Period,
    ReviewFacts,
    UnassignedClip,
    load_evidence,
    load_officers,
)
from compliance.linking import recompute_links
from compliance.parts import Judging, judge_period
from compliance.policy import Policy, load_policy
from compliance.response import INCIDENT_FINDINGS, Response
from compliance.tally import Tally
from compliance.verdicts import (
    FINDINGS,
    REASONS,
    REVIEW_CODES,
    VERDICTS,
    AttendanceOutcome,
    IncidentVerdict,
    judge_all,
)

CONTRACT_VERSION = 1


@dataclass(frozen=True)
class Report:
    """A period's verdicts. Incidents come as `verdicts` (objects, for the table, CSV and
    HTML renderings) or as `incident_entries` (the JSON contract's entries, encoded, in
    runs joined by `ENTRY_SEPARATOR`), whichever `build_report` was asked to keep;
    `tally` always covers every incident."""

    generated_at: datetime
    policy: Policy
    period: Period
    tally: Tally
    officers: dict[str, OfficerFacts]
    unassigned: list[UnassignedClip]
    verdicts: list[IncidentVerdict] = field(default_factory=list)
    incident_entries: list[bytes] = field(default_factory=list)

    @property
    def non_compliant(self) -> int:
        return self.tally.non_compliant

    def view(self, by: str) -> ConsistencyView:
        return consistency(self.tally, self.officers, self.policy, by)


def build_report(
    *,
    engine: Engine,
    period: Period,
    policy_path: Path | None = None,
    keep: str = "verdicts",
    groupings: tuple[str, ...] = GROUPINGS,
) -> Report:
    """Judges every incident reported in `period`; a named policy relinks with its window.

    `keep` says what the caller renders: "verdicts" (objects), "json" (encoded contract
    entries) or "tally" (the summary and the `groupings` views only); the last two are
    judged in parallel parts when the period is large.
    """
    checked_zone()  # months and local times need it; fail before any work
    policy = load_policy(policy_path)
    if policy_path is not None:
        with session_scope(engine) as session:
            recompute_links(session, policy=policy)
    encode = encode_incident if keep == "json" else None
    judging = Judging(policy, keep == "verdicts", encode, ENTRY_SEPARATOR, groupings)
    with shared_snapshot(engine):  # every part reads one instant, ingest running or not
        judged = judge_period(engine, judging, period)
        with read_scope(engine) as session:
            officers = load_officers(session)
    report = Report(
        generated_at=utc_now(),
        policy=policy,
        period=period,
        tally=judged.tally,
        officers=officers,
        unassigned=judged.unassigned,
        verdicts=judged.verdicts,
        incident_entries=judged.ordered_entries(),
    )
    return report


def encode_incident(verdict: IncidentVerdict) -> bytes:
    """One entry of the report's `incidents` list, as compact JSON."""
    return orjson.dumps(report_incident_json(verdict), option=JSON_TIMES)


# Naive datetimes in the report are UTC; written as ISO 8601 with a trailing Z.
JSON_TIMES = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def report_details(report: Report) -> dict[str, Any]:
    """What the `report` audit event records about a report given out."""
    return {
        "since": iso_z(report.period.since),
        "until": iso_z(report.period.until),
        "incidents": report.tally.incidents,
        "non_compliant": report.non_compliant,
        "policy": report.policy.source,
    }


@dataclass(frozen=True)
class IncidentDetail:
    verdict: IncidentVerdict
    officers: dict[str, OfficerFacts]
    policy: Policy


def judge_incident(session: Session, ref: str, policy: Policy) -> IncidentDetail:
    """One incident judged in the caller's transaction (not audited here)."""
    if session.get(Incident, ref) is None:
        raise NotFound(f"no incident {ref!r} in the catalogue")
    evidence = load_evidence(session, policy=policy, period=Period(), refs=[ref])
    verdict = judge_all(evidence, policy)[0]
    attach_candidates(session, [verdict])
    return IncidentDetail(verdict=verdict, officers=evidence.officers, policy=policy)


def report_json(report: Report) -> dict[str, Any]:
    """The documented JSON contract (see REPORT_CONTRACT.md)."""
    return {
        "generated_at": iso_z(report.generated_at),
        "policy": report.policy.as_dict(),
        "summary": summary(report),
        "officers": officers_json(report.officers),
        "incidents": Encoded(incident_entries(report)),
        "unassigned_clips": [_unassigned_json(clip) for clip in report.unassigned],
    }


class Encoded(list[bytes]):
    """List items already encoded (compact UTF-8 JSON), in runs joined by
    `ENTRY_SEPARATOR`; written out as they are."""


ENTRY_SEPARATOR = b",\n    "  # one list item per line, as `output.contract_json` lays out


def incident_entries(report: Report) -> list[bytes]:
    """The `incidents` list encoded, however the report was built."""
    return report.incident_entries or [encode_incident(v) for v in report.verdicts]


def officers_json(officers: dict[str, OfficerFacts]) -> dict[str, dict[str, str]]:
    return {
        officer_id: {"name": o.name, "team": o.team, "station": o.station}
        for officer_id, o in sorted(officers.items())
    }


def summary(report: Report) -> dict[str, Any]:
    tally = report.tally
    force = force_stats(tally, report.policy)
    return {
        "contract_version": CONTRACT_VERSION,
        "since": iso_z(report.period.since),
        "until": iso_z(report.period.until),
        "incidents": tally.incidents,
        "applicable": tally.applicable,
        "verdicts": {name: tally.verdicts[name] for name in VERDICTS},
        "reasons": {code: tally.reasons[code] for code in REASONS},
        "officer_findings": {code: tally.findings[code] for code in FINDINGS},
        "incident_findings": {code: tally.incident_findings[code] for code in INCIDENT_FINDINGS},
        "median_first_arrival_s": force.median_first_arrival_s,
        "p90_first_arrival_s": force.p90_first_arrival_s,
        "over_target_rate": force.over_target_rate,
        "applicable_attendances": force.applicable_attendances,
        "activation_rate": force.activation_rate,
        "child_voice_capture_rate": force.child_voice_rate,
        "linked_clips": len(tally.linked_clips),
        "ambiguous_links": tally.ambiguous_links,
        "manual_links": tally.manual_links,
        "unassigned_clips": len(report.unassigned),
    }


def incident_json(
    verdict: IncidentVerdict, officers: dict[str, OfficerFacts] | None = None
) -> dict[str, Any]:
    """One incident in full, the shape `bwv incident --json` prints: the report's entry
    plus each attendance's figures, and (given `officers`) the attending officers."""
    data = report_incident_json(verdict)
    data["attendance"] = _attendance_json(verdict)
    if officers is not None:
        attending = {a.officer_id for a in verdict.evidence.attendance}
        named = {key: value for key, value in officers.items() if key in attending}
        data["officers"] = officers_json(named)
    return data


def report_incident_json(verdict: IncidentVerdict) -> dict[str, Any]:
    """One entry of the report's `incidents` list (see REPORT_CONTRACT.md)."""
    incident = verdict.incident
    return {
        "incident_ref": incident.incident_ref,
        "type": incident.type,
        "reported_at": incident.reported_at,
        "location": incident.location,
        "child_contact": incident.child_contact,
        "child_ages": [int(age) for age in incident.child_ages.split(";") if age],
        "notes": incident.notes,
        "applicable": verdict.applicable,
        "applicability": verdict.applicability,
        "verdict": verdict.verdict,
        "reasons": [{"code": r.code, **r.evidence} for r in verdict.reasons],
        "officer_findings": [
            {"officer_id": f.officer_id, "code": f.code, **f.evidence} for f in verdict.findings
        ],
        "clips": [_clip_json(link) for link in verdict.evidence.links],
        "priority": incident.priority or None,
        **_response_json(verdict.response),
        "reviews": reviews_json(verdict),
    }


def reviewed_clips(verdict: IncidentVerdict) -> list[tuple[int, ReviewFacts]]:
    """The incident's linked clips a person reviewed, once each, in start order."""
    seen: dict[int, ReviewFacts] = {}
    for link in verdict.evidence.links:
        if link.clip.review is not None:
            seen.setdefault(link.clip.clip_id, link.clip.review)
    return list(seen.items())


def reviews_json(verdict: IncidentVerdict) -> list[dict[str, Any]]:
    """Each review as its evidence code with the clip, span, reason, who and when."""
    return [
        {"code": REVIEW_CODES[review.decision], "clip_id": clip_id, **_review_fields(review)}
        for clip_id, review in reviewed_clips(verdict)
    ]


def review_json(review: ReviewFacts | None) -> dict[str, Any] | None:
    return None if review is None else _review_fields(review)


def _review_fields(review: ReviewFacts) -> dict[str, Any]:
    return {
        "decision": review.decision,
        "start_s": review.start_s,
        "end_s": review.end_s,
        "reason": review.reason,
        "actor": review.actor,
        "decided_at": review.decided_at,
    }


def _response_json(response: Response | None) -> dict[str, Any]:
    """Time to be seen; null figures and no findings for a not-applicable incident."""
    if response is None:
        return {
            "first_arrival_target_s": None,
            "time_to_first_arrival_s": None,
            "incident_findings": [],
        }
    return {
        "first_arrival_target_s": response.target_s,
        "time_to_first_arrival_s": response.first_arrival_s,
        "incident_findings": [{"code": f.code, **f.evidence} for f in response.findings],
    }


def incident_detail_json(detail: IncidentDetail) -> dict[str, Any]:
    """`bwv incident --json`: the incident with its attending officers' names and teams."""
    return incident_json(detail.verdict, detail.officers)


_NO_OUTCOME = {
    "cameras": None,
    "clip_ids": None,
    "recorded": None,
    "child_voice_captured": None,
    "start_delay_s": None,
}


def _attendance_json(verdict: IncidentVerdict) -> list[dict[str, Any]]:
    """Not-applicable incidents are not judged, so their outcome fields are null."""
    outcomes = {o.officer_id: o for o in verdict.attendances}
    return [
        {
            "officer_id": att.officer_id,
            "arrived_at": att.arrived_at,
            "left_at": att.left_at,
            **_outcome_json(outcomes.get(att.officer_id)),
        }
        for att in verdict.evidence.attendance
    ]


def _outcome_json(outcome: AttendanceOutcome | None) -> dict[str, Any]:
    if outcome is None:
        return _NO_OUTCOME
    return {
        "cameras": outcome.cameras,
        "clip_ids": outcome.clip_ids,
        "recorded": outcome.recorded,
        "child_voice_captured": outcome.child_voice,
        "start_delay_s": outcome.start_delay_s,
    }


def _clip_json(link: LinkFacts) -> dict[str, Any]:
    clip = link.clip
    return {
        "clip_id": clip.clip_id,
        "file_name": clip.file_name,
        "officer_id": link.officer_id,
        "device_serial": clip.device_serial,
        "started_at": clip.started_at,
        "ended_at": clip.ended_at,
        "status": clip.status,
        "failure_reason": clip.failure_reason,
        "audio_state": clip.audio_state,
        "speech_seconds": clip.speech_seconds,
        "child_speech_seconds": clip.child_speech_seconds,
        "link_source": link.source,
        "ambiguous": link.ambiguous,
        "overlap_s": link.overlap_s,
        "child_voice_review": review_json(clip.review),
    }


def _unassigned_json(clip: UnassignedClip) -> dict[str, Any]:
    return {
        "clip_id": clip.clip_id,
        "file_name": clip.file_name,
        "device_serial": clip.device_serial,
        "started_at": clip.started_at,
    }


def consistency_json(report: Report, by: str) -> dict[str, Any]:
    """The `--by` contract: the force-wide line and one line per group."""
    view = report.view(by)
    return {
        "generated_at": iso_z(report.generated_at),
        "policy": report.policy.as_dict(),
        "summary": summary(report),
        "by": by,
        "flag_rule": view.rule,
        "force": group_json(view.force),
        "groups": [group_json(group) for group in view.groups],
    }


def group_json(group: GroupStats) -> dict[str, Any]:
    return {
        "group": group.group,
        "label": group.label,
        "incidents": group.incidents,
        "applicable_attendances": group.applicable_attendances,
        "recorded": group.recorded,
        "activation_rate": group.activation_rate,
        "child_voice_captured": group.child_voice_captured,
        "child_voice_rate": group.child_voice_rate,
        "median_start_delay_s": group.median_start_delay_s,
        "findings": group.findings,
        "flagged": bool(group.flags),
        "flags": group.flags,
        "arrivals_measured": group.arrivals_measured,
        "median_first_arrival_s": group.median_first_arrival_s,
        "p90_first_arrival_s": group.p90_first_arrival_s,
        "over_target": group.over_target,
        "over_target_rate": group.over_target_rate,
        "not_attended": group.not_attended,
    }
