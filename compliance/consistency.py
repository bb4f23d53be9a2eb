"""The consistency view: how regularly each officer, team, station, incident type or month
recorded at applicable incidents, and captured the child's voice when they did.

Inspectors compare groups against the force as a whole, so each group carries the same
figures as the force-wide line and is flagged when it is well below it. The rule (from
the policy): a group with at least `flag_min_attendances` applicable attendances whose
rate is more than `flag_below_points` percentage points below the force-wide rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

from compliance.facts import OfficerFacts
from compliance.policy import Policy
from compliance.tally import GROUPINGS, UNKNOWN, GroupCounts, Tally
from compliance.verdicts import FINDINGS

__all__ = ["GROUPINGS", "UNKNOWN", "ConsistencyView", "GroupStats", "consistency", "force_stats"]
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
    # Time to be seen, over the applicable incidents this group's officer reached first.
    arrivals_measured: int = 0
    median_first_arrival_s: float | None = None
    p90_first_arrival_s: float | None = None
    over_target: int = 0
    over_target_rate: float | None = None
    not_attended: int = 0


@dataclass(frozen=True)
class ConsistencyView:
    by: str
    force: GroupStats
    groups: list[GroupStats]
    rule: str


def consistency(
    tally: Tally, officers: dict[str, OfficerFacts], policy: Policy, by: str
) -> ConsistencyView:
    """Per-group figures over applicable attendances, flagged against the force-wide rate."""
    force = force_stats(tally, policy)
    groups = [
        _stats(key, _label(key, by, officers), counts, force, policy)
        for key, counts in tally.groups[by].items()
    ]
    return ConsistencyView(by=by, force=force, groups=_ordered(groups, by), rule=flag_rule(policy))


def force_stats(tally: Tally, policy: Policy) -> GroupStats:
    """The force-wide figures over every applicable attendance."""
    return _stats("force", "Force-wide", tally.force, None, policy)


def flag_rule(policy: Policy) -> str:
    return (
        f"flagged when a group with at least {policy.flag_min_attendances} applicable "
        f"attendances has an activation or child-voice rate more than "
        f"{policy.flag_below_points:g} percentage points below the force-wide rate"
    )


def _label(key: str, by: str, officers: dict[str, OfficerFacts]) -> str:
    if by == "officer" and key in officers:
        return f"{key} {officers[key].name}"
    return key


def _stats(
    key: str, label: str, counts: GroupCounts, force: GroupStats | None, policy: Policy
) -> GroupStats:
    delays = counts.start_delays
    stats = GroupStats(
        group=key,
        label=label,
        incidents=counts.incidents,
        applicable_attendances=counts.attendances,
        recorded=counts.recorded,
        activation_rate=_rate(counts.recorded, counts.attendances),
        child_voice_captured=counts.child_voice,
        child_voice_rate=_rate(counts.child_voice, counts.attendances),
        median_start_delay_s=round(median(delays), 1) if delays else None,
        findings={code: counts.findings[code] for code in FINDINGS},
        flags=[],
        arrivals_measured=len(counts.arrivals),
        median_first_arrival_s=round(median(counts.arrivals), 1) if counts.arrivals else None,
        p90_first_arrival_s=percentile(counts.arrivals, 90),
        over_target=counts.over_target,
        over_target_rate=_rate(counts.over_target, len(counts.arrivals)),
        not_attended=counts.not_attended,
    )
    return _flagged(stats, force, policy) if force else stats


def percentile(values: list[float], point: int) -> float | None:
    """The nearest-rank percentile: the smallest value with `point`% of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(math.ceil(point / 100 * len(ordered)) - 1, 0)], 1)


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
