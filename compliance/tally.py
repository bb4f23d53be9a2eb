"""What the summary and the consistency view count, in a form that adds up across parts.

A force's year is judged in parts, each in its own process (see `parts`). Verdict objects
are costly to send between processes (pickling them takes longer than judging them), so
a part sends back this tally instead: counters, the linked clip ids, and per group of the
consistency view the counts and start delays of its applicable attendances. Every figure
adds up (an incident belongs to exactly one part, and medians are taken over the merged
delays), so the summary and every `--by` view are the same however a report was built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from bwv.core.timeutil import as_utc, local_zone
from compliance.facts import OfficerFacts
from compliance.response import Response
from compliance.verdicts import NON_COMPLIANT, AttendanceOutcome, IncidentVerdict

GROUPINGS = ("officer", "team", "station", "type", "month")
UNKNOWN = "(not in officers list)"
NOBODY = "(no officer attended)"  # where NOT_ATTENDED incidents fall by officer, team, station

# The group of an attendance; of an incident's time to first arrival, given the first
# officer's attendance (None when nobody attended).
GroupKey = Callable[[IncidentVerdict, AttendanceOutcome | None], str]


@dataclass
class GroupCounts:
    """Applicable attendances of one group (or the whole force), and their incidents."""

    incidents: int = 0
    attendances: int = 0
    recorded: int = 0
    child_voice: int = 0
    start_delays: list[float] = field(default_factory=list)
    findings: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)  # seconds to first arrival
    over_target: int = 0
    not_attended: int = 0

    def count(self, outcome: AttendanceOutcome) -> None:
        self.attendances += 1
        self.recorded += outcome.recorded
        self.child_voice += outcome.child_voice
        if outcome.start_delay_s is not None:
            self.start_delays.append(outcome.start_delay_s)
        for finding in outcome.findings:
            self.findings[finding.code] += 1

    def add(self, other: GroupCounts) -> None:
        self.incidents += other.incidents
        self.attendances += other.attendances
        self.recorded += other.recorded
        self.child_voice += other.child_voice
        self.start_delays += other.start_delays
        self.findings.update(other.findings)
        self.arrivals += other.arrivals
        self.over_target += other.over_target
        self.not_attended += other.not_attended

    def count_response(self, response: Response) -> None:
        """One applicable incident's time to first arrival, in the group that saw it first."""
        if response.first_arrival_s is None:
            self.not_attended += 1
            return
        self.arrivals.append(response.first_arrival_s)
        self.over_target += response.over_target


@dataclass
class Tally:
    incidents: int = 0
    applicable: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    incident_findings: Counter[str] = field(default_factory=Counter)
    linked_clips: set[int] = field(default_factory=set)
    ambiguous_links: int = 0
    manual_links: int = 0
    force: GroupCounts = field(default_factory=GroupCounts)
    groups: dict[str, dict[str, GroupCounts]] = field(default_factory=dict)  # by -> key ->

    @property
    def non_compliant(self) -> int:
        return self.verdicts[NON_COMPLIANT]

    @classmethod
    def of(
        cls,
        verdicts: list[IncidentVerdict],
        officers: dict[str, OfficerFacts],
        groupings: tuple[str, ...] = GROUPINGS,
    ) -> Tally:
        links = [link for v in verdicts for link in v.evidence.links]
        applicable = [v for v in verdicts if v.applicable]
        tally = cls(
            incidents=len(verdicts),
            applicable=len(applicable),
            verdicts=Counter(v.verdict for v in verdicts),
            reasons=Counter(r.code for v in verdicts for r in v.reasons),
            findings=Counter(f.code for v in verdicts for f in v.findings),
            incident_findings=Counter(
                f.code for v in verdicts if v.response for f in v.response.findings
            ),
            linked_clips={link.clip.clip_id for link in links},
            ambiguous_links=sum(1 for link in links if link.ambiguous),
            manual_links=sum(1 for link in links if link.source == "manual"),
        )
        keys = {by: group_key(by, officers) for by in groupings}
        tally.force, tally.groups = _counted(applicable, keys)
        return tally

    def add(self, other: Tally) -> None:
        self.incidents += other.incidents
        self.applicable += other.applicable
        self.verdicts.update(other.verdicts)
        self.reasons.update(other.reasons)
        self.findings.update(other.findings)
        self.incident_findings.update(other.incident_findings)
        self.linked_clips |= other.linked_clips
        self.ambiguous_links += other.ambiguous_links
        self.manual_links += other.manual_links
        self.force.add(other.force)
        for by, groups in other.groups.items():
            mine = self.groups.setdefault(by, {})
            for key, counts in groups.items():
                mine.setdefault(key, GroupCounts()).add(counts)


def _counted(
    verdicts: list[IncidentVerdict], keys: dict[str, GroupKey]
) -> tuple[GroupCounts, dict[str, dict[str, GroupCounts]]]:
    """The force-wide counts and each grouping's, in one pass over the attendances."""
    force = GroupCounts(incidents=sum(1 for v in verdicts if v.attendances))
    groups: dict[str, dict[str, GroupCounts]] = {by: {} for by in keys}
    for verdict in verdicts:
        seen: set[tuple[str, str]] = set()
        for outcome in verdict.attendances:
            force.count(outcome)
            for by, key_of in keys.items():
                key = key_of(verdict, outcome)
                counts = groups[by].get(key) or groups[by].setdefault(key, GroupCounts())
                counts.count(outcome)
                if (by, key) not in seen:
                    seen.add((by, key))
                    counts.incidents += 1
        if verdict.response is not None:
            _count_response(verdict, verdict.response, force, groups, keys)
    return force, groups


def _count_response(
    verdict: IncidentVerdict,
    response: Response,
    force: GroupCounts,
    groups: dict[str, dict[str, GroupCounts]],
    keys: dict[str, GroupKey],
) -> None:
    """Counted once per grouping, in the group of the officer who arrived first."""
    force.count_response(response)
    first = next(
        (o for o in verdict.attendances if o.officer_id == response.first_officer_id), None
    )
    for by, key_of in keys.items():
        groups[by].setdefault(key_of(verdict, first), GroupCounts()).count_response(response)


def group_key(by: str, officers: dict[str, OfficerFacts]) -> GroupKey:
    """The group an attendance falls in, for `--by`; months are local calendar months."""
    if by in ("team", "station"):

        def officer_attribute(_verdict: IncidentVerdict, outcome: AttendanceOutcome | None) -> str:
            if outcome is None:
                return NOBODY
            found = officers.get(outcome.officer_id)
            return getattr(found, by) if found else UNKNOWN

        return officer_attribute
    if by == "month":
        return _local_month(local_zone())
    if by == "type":
        return lambda verdict, _outcome: verdict.incident.type
    return lambda _verdict, outcome: outcome.officer_id if outcome else NOBODY


def _local_month(zone: tzinfo) -> GroupKey:
    def month(verdict: IncidentVerdict, _outcome: AttendanceOutcome | None) -> str:
        return as_utc(verdict.incident.reported_at).astimezone(zone).strftime("%Y-%m")

    return month
