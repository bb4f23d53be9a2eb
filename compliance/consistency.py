"""The consistency view: how regularly each officer, team, station, incident type or month
recorded at applicable incidents, and captured the child's voice when they did.

Inspectors compare groups against the force as a whole, so each group carries the same
figures as the force-wide line and is flagged when it is well below it. The rule (from
the policy): a group with at least `flag_min_attendances` applicable attendances whose
rate is more than `flag_below_points` percentage points below the force-wide rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from statistics import median

from bwv.timeutil import local_zone
from compliance.facts import OfficerFacts
from compliance.policy import Policy
from compliance.rawtime import as_utc
from compliance.verdicts import FINDINGS, AttendanceOutcome, IncidentVerdict

GROUPINGS = ("officer", "team", "station", "type", "month")
UNKNOWN = "(not in officers list)"
ACTIVATION_FLAG = "ACTIVATION_BELOW_FORCE"
CHILD_VOICE_FLAG = "CHILD_VOICE_BELOW_FORCE"


@dataclass(frozen=True)
class GroupStats:
    group: str
    label: str
    incidents: int
    applicable_attendances: int
    recorded: int
    activation_rate: float | None
    child_voice_captured: int
    child_voice_rate: float | None
    median_start_delay_s: float | None
    findings: dict[str, int]
    flags: list[str]


@dataclass(frozen=True)
class ConsistencyView:
    by: str
    force: GroupStats
    groups: list[GroupStats]
    rule: str


Pair = tuple[IncidentVerdict, AttendanceOutcome]


def consistency(
    verdicts: list[IncidentVerdict],
    officers: dict[str, OfficerFacts],
    policy: Policy,
    by: str,
) -> ConsistencyView:
    """Per-group figures over applicable attendances, flagged against the force-wide rate."""
    pairs = _pairs(verdicts)
    force = _stats("force", "Force-wide", pairs, None, policy)
    key_of, label_of = _grouping(by, officers)
    grouped: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        grouped[key_of(pair)].append(pair)
    groups = [_stats(key, label_of(key), items, force, policy) for key, items in grouped.items()]
    return ConsistencyView(by=by, force=force, groups=_ordered(groups, by), rule=flag_rule(policy))


def force_stats(verdicts: list[IncidentVerdict], policy: Policy) -> GroupStats:
    """The force-wide figures over every applicable attendance."""
    return _stats("force", "Force-wide", _pairs(verdicts), None, policy)


def _pairs(verdicts: list[IncidentVerdict]) -> list[Pair]:
    return [(v, outcome) for v in verdicts if v.applicable for outcome in v.attendances]


def flag_rule(policy: Policy) -> str:
    return (
        f"flagged when a group with at least {policy.flag_min_attendances} applicable "
        f"attendances has an activation or child-voice rate more than "
        f"{policy.flag_below_points:g} percentage points below the force-wide rate"
    )


def _grouping(
    by: str, officers: dict[str, OfficerFacts]
) -> tuple[Callable[[Pair], str], Callable[[str], str]]:
    zone = local_zone()

    def officer_attr(name: str) -> Callable[[Pair], str]:
        def key(pair: Pair) -> str:
            found = officers.get(pair[1].officer_id)
            return getattr(found, name) if found else UNKNOWN

        return key

    keys: dict[str, Callable[[Pair], str]] = {
        "officer": lambda pair: pair[1].officer_id,
        "team": officer_attr("team"),
        "station": officer_attr("station"),
        "type": lambda pair: pair[0].incident.type,
        "month": lambda pair: (
            as_utc(pair[0].incident.reported_at).astimezone(zone).strftime("%Y-%m")
        ),
    }

    def label(key: str) -> str:
        if by == "officer" and key in officers:
            return f"{key} {officers[key].name}"
        return key

    return keys[by], label


def _month(reported: datetime, zone: tzinfo) -> str:
    return as_utc(reported).astimezone(zone).strftime("%Y-%m")


def _stats(
    key: str, label: str, pairs: list[Pair], force: GroupStats | None, policy: Policy
) -> GroupStats:
    outcomes = [outcome for _, outcome in pairs]
    recorded = sum(1 for o in outcomes if o.recorded)
    voiced = sum(1 for o in outcomes if o.child_voice)
    delays = [o.start_delay_s for o in outcomes if o.start_delay_s is not None]
    counts = dict.fromkeys(FINDINGS, 0)
    for outcome in outcomes:
        for finding in outcome.findings:
            counts[finding.code] += 1
    stats = GroupStats(
        group=key,
        label=label,
        incidents=len({v.incident.incident_ref for v, _ in pairs}),
        applicable_attendances=len(outcomes),
        recorded=recorded,
        activation_rate=_rate(recorded, len(outcomes)),
        child_voice_captured=voiced,
        child_voice_rate=_rate(voiced, len(outcomes)),
        median_start_delay_s=round(median(delays), 1) if delays else None,
        findings=counts,
        flags=[],
    )
    return _flagged(stats, force, policy) if force else stats


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _flagged(stats: GroupStats, force: GroupStats, policy: Policy) -> GroupStats:
    if stats.applicable_attendances < policy.flag_min_attendances:
        return stats
    margin = policy.flag_below_points / 100
    if _below(stats.activation_rate, force.activation_rate, margin):
        stats.flags.append(ACTIVATION_FLAG)
    if _below(stats.child_voice_rate, force.child_voice_rate, margin):
        stats.flags.append(CHILD_VOICE_FLAG)
    return stats


def _below(rate: float | None, force_rate: float | None, margin: float) -> bool:
    return rate is not None and force_rate is not None and rate < force_rate - margin - 1e-9


def _ordered(groups: list[GroupStats], by: str) -> list[GroupStats]:
    """Months in calendar order; any other grouping worst activation first."""
    if by == "month":
        return sorted(groups, key=lambda g: g.group)
    return sorted(groups, key=lambda g: (g.activation_rate or 0.0, g.group))
