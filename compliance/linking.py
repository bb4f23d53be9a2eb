"""Linking clips to the incidents their officers attended.

A clip belongs to its sidecar officer, else to whoever had its camera when it started.
It links to the attended incident whose window `[arrived_at - pre, left_at + post]`
overlaps it most (marked ambiguous when several qualify), minus any pair a person
unlinked, plus any pair a person linked: those decisions outlive every recomputation.

Ingest and import call `recompute_links` after every batch, on catalogues of hundreds
of thousands of clips, so it bulk-loads plain tuples, matches them with sorted sweeps
and bisection per officer, and writes only the difference with set-based statements.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlmodel import Session

from bwv.core.models import Assignment, Attendance, Clip, ClipLink, LinkDecision
from compliance.bulk import paused_gc
from compliance.policy import Policy, load_policy
from compliance.rawtime import epoch, raw

LinkKey = tuple[int, str]


@dataclass(slots=True)
class ClipSpan:
    clip_id: int
    device_serial: str | None
    sidecar_officer: str | None
    start: float
    end: float


@dataclass(slots=True)
class LinkRow:
    officer_id: str | None
    overlap_s: float
    ambiguous: bool
    source: str


@dataclass(frozen=True)
class LinkSummary:
    """What one recomputation found and changed."""

    clips: int
    linked_clips: int
    links: int
    ambiguous: int
    unassigned: int
    untimed: int
    manual_links: int
    manual_unlinks: int
    added: int
    removed: int
    changed: int
    seconds: float


def recompute_links(session: Session, *, policy: Policy | None = None) -> LinkSummary:
    """Brings every clip's links up to date with attendance, assignments and decisions."""
    with paused_gc():
        return _recompute(session, policy)


def _recompute(session: Session, policy: Policy | None) -> LinkSummary:
    began = time.perf_counter()
    policy = policy or load_policy()
    session.flush()
    clips, untimed = load_clip_spans(session)
    officers = resolve_officers(clips, load_assignments(session))
    decisions = _load_decisions(session)
    auto = match_incidents(clips, officers, _load_windows(session, policy), decisions)
    wanted = _with_decisions(auto, officers, decisions)
    added, removed, changed = _write_difference(session, wanted)
    return LinkSummary(
        clips=len(clips),
        linked_clips=len({clip_id for clip_id, _ in wanted}),
        links=len(wanted),
        ambiguous=sum(1 for row in wanted.values() if row.ambiguous),
        unassigned=sum(1 for clip in clips if officers.get(clip.clip_id) is None),
        untimed=untimed,
        manual_links=sum(1 for action in decisions.values() if action == "link"),
        manual_unlinks=sum(1 for action in decisions.values() if action == "unlink"),
        added=added,
        removed=removed,
        changed=changed,
        seconds=round(time.perf_counter() - began, 3),
    )


def clip_end(start: float, ended: float | None, duration: float | None) -> float:
    """A clip's end in epoch seconds; an unreadable clip of unknown length ends as it starts."""
    if ended is not None:
        return max(ended, start)
    return start + max(duration or 0.0, 0.0)


def load_clip_spans(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> tuple[list[ClipSpan], int]:
    """Clips with a start time (optionally in [since, until)), and how many lack one."""
    c = Clip.__table__.c  # type: ignore[attr-defined]
    query = select(
        c.id, c.device_serial, c.officer_id, raw(c.started_at), raw(c.ended_at), c.duration_s
    )
    if since is not None:
        query = query.where(c.started_at >= since)
    if until is not None:
        query = query.where(c.started_at < until)
    spans: list[ClipSpan] = []
    untimed = 0
    for clip_id, serial, officer, started, ended, duration in session.execute(query).all():
        start = epoch(started)
        if start is None:
            untimed += 1
            continue
        end = clip_end(start, epoch(ended), duration)
        spans.append(ClipSpan(clip_id, serial, officer or None, start, end))
    return spans, untimed


@dataclass(frozen=True)
class AssignmentIndex:
    """Camera assignments sorted by issue time, by camera (for bisection) and by officer."""

    starts: dict[str, list[float]]
    by_camera: dict[str, list[tuple[float, float, str]]]  # issued, returned, officer
    by_officer: dict[str, list[tuple[float, float, str]]]  # issued, returned, camera

    def officer_at(self, serial: str | None, moment: float) -> str | None:
        if serial is None or serial not in self.starts:
            return None
        position = bisect_right(self.starts[serial], moment) - 1
        if position < 0:
            return None
        _issued, returned, officer = self.by_camera[serial][position]
        return officer if moment < returned else None

    def cameras_of(self, officer: str, start: float, end: float) -> list[str]:
        """The cameras `officer` held at some moment of [start, end]."""
        return [
            serial
            for issued, returned, serial in self.by_officer.get(officer, [])
            if issued <= end and returned > start
        ]


def load_assignments(session: Session, officers: Collection[str] | None = None) -> AssignmentIndex:
    """Every camera assignment, or only those of `officers` (enough to judge incidents they
    alone attended: one incident's page must not read the whole force's cameras)."""
    c = Assignment.__table__.c  # type: ignore[attr-defined]
    query = select(c.device_serial, raw(c.issued_at), raw(c.returned_at), c.officer_id)
    if officers is not None:
        query = query.where(c.officer_id.in_(sorted(officers)))
    by_camera: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    by_officer: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for serial, issued_text, returned, officer in session.execute(query).all():
        issued = epoch(issued_text) or 0.0
        end = epoch(returned) if returned is not None else float("inf")
        assert end is not None
        by_camera[serial].append((issued, end, officer))
        by_officer[officer].append((issued, end, serial))
    for entries in by_camera.values():
        entries.sort()
    starts = {serial: [entry[0] for entry in entries] for serial, entries in by_camera.items()}
    return AssignmentIndex(starts=starts, by_camera=dict(by_camera), by_officer=dict(by_officer))


def resolve_officers(clips: Iterable[ClipSpan], index: AssignmentIndex) -> dict[int, str | None]:
    """The officer of each clip: the sidecar's, else the camera's holder at the clip's start."""
    return {
        clip.clip_id: clip.sidecar_officer or index.officer_at(clip.device_serial, clip.start)
        for clip in clips
    }


@dataclass(frozen=True)
class OfficerWindows:
    """One officer's attendance windows sorted by start, with the longest window's length."""

    starts: list[float]
    windows: list[tuple[float, float, float, str]]  # start, end, arrival, incident_ref
    longest: float


def _load_windows(session: Session, policy: Policy) -> dict[str, OfficerWindows]:
    c = Attendance.__table__.c  # type: ignore[attr-defined]
    query = select(c.officer_id, raw(c.arrived_at), raw(c.left_at), c.incident_ref)
    pre, post = policy.link_window
    grouped: dict[str, list[tuple[float, float, float, str]]] = defaultdict(list)
    for officer, arrived, left, ref in session.execute(query).all():
        arrival, departure = epoch(arrived) or 0.0, epoch(left) or 0.0
        grouped[officer].append((arrival - pre, departure + post, arrival, ref))
    return {officer: _officer_windows(rows) for officer, rows in grouped.items()}


def _officer_windows(rows: list[tuple[float, float, float, str]]) -> OfficerWindows:
    rows.sort()
    return OfficerWindows(
        starts=[row[0] for row in rows],
        windows=rows,
        longest=max(row[1] - row[0] for row in rows),
    )


def match_incidents(
    clips: list[ClipSpan],
    officers: dict[int, str | None],
    windows: dict[str, OfficerWindows],
    decisions: dict[LinkKey, str],
) -> dict[LinkKey, LinkRow]:
    """The automatic link of each clip: the qualifying incident with the greatest overlap."""
    links: dict[LinkKey, LinkRow] = {}
    for clip in clips:
        officer = officers.get(clip.clip_id)
        if officer is None or officer not in windows:
            continue
        found = _candidates(clip, windows[officer], decisions)
        if found:
            negative_overlap, _distance, ref = min(found)
            links[(clip.clip_id, ref)] = LinkRow(officer, -negative_overlap, len(found) > 1, "auto")
    return links


def _candidates(
    clip: ClipSpan, officer: OfficerWindows, decisions: dict[LinkKey, str]
) -> list[tuple[float, float, str]]:
    """Qualifying incidents as sort keys: (-overlap, distance from arrival, incident_ref)."""
    found: list[tuple[float, float, str]] = []
    position = bisect_right(officer.starts, clip.end) - 1
    earliest = clip.start - officer.longest
    while position >= 0 and officer.starts[position] >= earliest:
        start, end, arrival, ref = officer.windows[position]
        position -= 1
        if end < clip.start or decisions.get((clip.clip_id, ref)) == "unlink":
            continue
        overlap = round(min(clip.end, end) - max(clip.start, start), 3)
        found.append((-overlap, abs(clip.start - arrival), ref))
    return found


def _load_decisions(session: Session) -> dict[LinkKey, str]:
    c = LinkDecision.__table__.c  # type: ignore[attr-defined]
    query = select(c.clip_id, c.incident_ref, c.action)
    return {(clip_id, ref): action for clip_id, ref, action in session.execute(query).all()}


def _with_decisions(
    auto: dict[LinkKey, LinkRow],
    officers: dict[int, str | None],
    decisions: dict[LinkKey, str],
) -> dict[LinkKey, LinkRow]:
    wanted = dict(auto)
    for key, action in decisions.items():
        if action != "link":
            continue
        computed = auto.get(key)
        overlap = computed.overlap_s if computed else 0.0
        wanted[key] = LinkRow(officers.get(key[0]), overlap, False, "manual")
    return wanted


def _load_links(session: Session) -> dict[LinkKey, tuple[int, LinkRow]]:
    c = ClipLink.__table__.c  # type: ignore[attr-defined]
    query = select(
        c.id, c.clip_id, c.incident_ref, c.officer_id, c.overlap_s, c.ambiguous, c.source
    )
    return {
        (clip_id, ref): (link_id, LinkRow(officer, round(overlap, 3), bool(ambiguous), source))
        for link_id, clip_id, ref, officer, overlap, ambiguous, source in session.execute(
            query
        ).all()
    }


def _write_difference(session: Session, wanted: dict[LinkKey, LinkRow]) -> tuple[int, int, int]:
    """Deletes, inserts and updates only what changed; returns the three counts."""
    table = ClipLink.__table__  # type: ignore[attr-defined]
    stored = _load_links(session)
    gone = [{"link_id": link_id} for key, (link_id, _) in stored.items() if key not in wanted]
    new = [_link_values(key, row) for key, row in wanted.items() if key not in stored]
    moved = [
        {"link_id": stored[key][0], **_row_values(row, prefix="new_")}
        for key, row in wanted.items()
        if key in stored and stored[key][1] != row
    ]
    if gone:
        session.execute(delete(table).where(table.c.id == bindparam("link_id")), gone)
    if new:
        session.execute(insert(table), new)
    if moved:
        statement = update(table).where(table.c.id == bindparam("link_id"))
        values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in _ROW_FIELDS}
        session.execute(statement.values(values), moved)
    return len(new), len(gone), len(moved)


_ROW_FIELDS = ("officer_id", "overlap_s", "ambiguous", "source")


def _row_values(row: LinkRow, prefix: str = "") -> dict[str, object]:
    return {f"{prefix}{name}": getattr(row, name) for name in _ROW_FIELDS}


def _link_values(key: LinkKey, row: LinkRow) -> dict[str, object]:
    return {"clip_id": key[0], "incident_ref": key[1], **_row_values(row)}
