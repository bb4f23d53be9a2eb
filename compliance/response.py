"""Time to be seen: how long each applicable incident waited for its first officer.

The inspection found that officers "do not see some children quickly enough". This is
measured apart from the voice-of-the-child rules: the time from `reported_at` to the
earliest `arrived_at` of any attending officer, against the policy's target for the
incident's priority. Being slow (SLOW_RESPONSE) or never attended (NOT_ATTENDED) is a
finding on the incident with its figures as evidence; it never changes the verdict,
which is about what the footage holds. Pure functions over loaded facts, like verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compliance.facts import IncidentEvidence
from compliance.policy import Policy

SLOW_RESPONSE = "SLOW_RESPONSE"
NOT_ATTENDED = "NOT_ATTENDED"
INCIDENT_FINDINGS = (SLOW_RESPONSE, NOT_ATTENDED)


@dataclass(slots=True)
class IncidentFinding:
    """A finding on the incident as a whole rather than on one officer."""

    code: str
    evidence: dict[str, Any]


@dataclass(slots=True)
class Response:
    priority: str
    target_s: float
    first_arrival_s: float | None  # None when no officer attended
    first_officer_id: str | None
    findings: list[IncidentFinding] = field(default_factory=list)

    @property
    def over_target(self) -> bool:
        return self.first_arrival_s is not None and self.first_arrival_s > self.target_s


def measure_response(item: IncidentEvidence, policy: Policy) -> Response:
    """The incident's time to first arrival against its priority's target, with findings."""
    incident = item.incident
    target = policy.arrival_target(incident.priority)
    facts = {
        "priority": incident.priority or None,
        "reported_at": incident.reported_at,
        "target_s": target,
    }
    if not item.attendance:
        finding = IncidentFinding(NOT_ATTENDED, facts)
        return Response(incident.priority, target, None, None, [finding])
    first = min(item.attendance, key=lambda a: (a.arrived_at, a.officer_id))
    waited = round((first.arrived_at - incident.reported_at).total_seconds(), 1)
    response = Response(incident.priority, target, waited, first.officer_id)
    if response.over_target:
        evidence = {
            **facts,
            "officer_id": first.officer_id,
            "first_arrived_at": first.arrived_at,
            "time_to_first_arrival_s": waited,
            "over_by_s": round(waited - target, 1),
        }
        response.findings.append(IncidentFinding(SLOW_RESPONSE, evidence))
    return response
