"""What the pages of `bwv serve` show and do: one function per page or action.

The web shell only parses a request, calls one of these and renders the result, so every
rule (verdicts, child speech, the review decision, link decisions) is the one the CLI
uses, and every view of a clip, playback, decision and export is audited here with the
signed-in user as actor. Whole-catalogue verdicts (the incident list, the review queue)
are judged once and kept until the catalogue changes: judging 100,000 incidents takes
seconds, a page must take milliseconds. An incident page shows its kept verdict while
the catalogue is unchanged, and judges the incident alone when it has changed.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwv.core import audit
from bwv.core.db import read_connection, read_scope, session_scope
from bwv.core.errors import AccessDenied, BwvError, NotFound
from bwv.core.models import (
    AuditEvent,
    Clip,
    ClipLink,
    Derivative,
    Example,
    VoiceReview,
    utc_now,
)
from bwv.core.timeutil import checked_zone
from bwv.services.catalogue import ClipDetail, audit_clip_view, read_clip_detail
from bwv.services.child_record import ChildRecord, record_of
from bwv.services.compliance import audit_incident_view_now
from compliance.candidates import attach_candidates, likeliest_segments
from compliance.consistency import GROUPINGS, ConsistencyView, consistency
from compliance.facts import OfficerFacts, Period, load_evidence
from compliance.policy import Policy, load_policy
from compliance.report import IncidentDetail, judge_incident
from compliance.tally import Tally
from compliance.verdicts import IncidentVerdict, Reason, judge_all

PAGE_SIZE = 50
KEPT_FILTERS = 64  # filtered lists kept per catalogue state
FREEZE_FROM = 10_000  # incidents from which the kept verdicts are kept from the collector
PRACTICES = ("good", "poor")
# Actions that change what a verdict is judged on; views and reports change nothing.
CHANGES = ("ingest", "import", "link", "unlink", "voice_review", "demo")


@dataclass(frozen=True)
class IncidentRow:
    incident_ref: str
    type: str
    reported_at: datetime  # naive UTC
    verdict: str
    reasons: tuple[str, ...]
    findings: tuple[str, ...]
    officers: tuple[str, ...]
    teams: tuple[str, ...]
    stations: tuple[str, ...]
    clip_ids: tuple[int, ...]
    day: str = ""  # reported_at as YYYY-MM-DD (UTC), worked out once for the date filters


@dataclass(frozen=True)
class IncidentFilter:
    verdict: str = ""
    reason: str = ""
    finding: str = ""
    officer: str = ""
    team: str = ""
    station: str = ""
    type: str = ""
    month: str = ""  # YYYY-MM (UTC)
    since: str = ""  # YYYY-MM-DD (UTC)
    until: str = ""

    def keeps(self, row: IncidentRow) -> bool:
        return all(test(row) for test in self.tests())

    def tests(self) -> list[Any]:
        """One test per field given, so a scan of every incident compares only those."""
        tests: list[Any] = [
            (lambda row, value=value, name=name: value in getattr(row, name))
            for value, name in ((self.reason, "reasons"), (self.finding, "findings"),
                                (self.officer, "officers"), (self.team, "teams"),
                                (self.station, "stations"))
            if value
        ]  # fmt: skip
        if self.verdict:
            tests.append(lambda row: row.verdict == self.verdict)
        if self.type:
            tests.append(lambda row: row.type == self.type)
        return tests + self.day_tests()

    def day_tests(self) -> list[Any]:
        """The date filters (UTC days), which the consistency view honours too."""
        tests: list[Any] = []
        if self.month:
            tests.append(lambda row: row.day.startswith(self.month))
        if self.since:
            tests.append(lambda row: row.day >= self.since)
        if self.until:
            tests.append(lambda row: row.day < self.until)
        return tests

    def dates(self) -> IncidentFilter:
        return IncidentFilter(month=self.month, since=self.since, until=self.until)

    def query(self) -> str:
        """The filter as a query string, for links that keep it (paging)."""
        return urlencode({name: value for name, value in asdict(self).items() if value})


@dataclass
class _Judged:
    signature: tuple[Any, ...] = ()
    rows: list[IncidentRow] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)  # what `bwv report --by` counts, all incidents
    officers: dict[str, OfficerFacts] = field(default_factory=dict)
    policy: Policy | None = None
    # Each incident's verdict as judged with the list: the incident page shows it while
    # the catalogue is unchanged, rather than loading and judging the incident again.
    verdicts: dict[str, IncidentVerdict] = field(default_factory=dict)
    by_verdict: dict[str, list[IncidentRow]] = field(default_factory=dict)
    # (by, date filter) -> view; the views of every incident are worked out with the list
    views: dict[tuple[str, IncidentFilter], ConsistencyView] = field(default_factory=dict)
    charts: dict[tuple[str, IncidentFilter, int], dict[str, str]] = field(default_factory=dict)
    kept: dict[IncidentFilter, list[IncidentRow]] = field(default_factory=dict)  # by filter
    # One thread works out a filter or a view while the others asking for it wait, rather
    # than twenty threads scanning the same 100,000 rows at once.
    working: threading.Lock = field(default_factory=threading.Lock)

    def matching(self, wanted: IncidentFilter) -> list[IncidentRow]:
        """The rows a filter keeps, worked out once per filter and catalogue state (paging
        through a filtered list must not scan every incident for every page)."""
        if wanted == IncidentFilter():
            return self.rows
        if wanted == IncidentFilter(verdict=wanted.verdict):
            return self.by_verdict.get(wanted.verdict, [])
        with self.working:
            kept = self.kept.get(wanted)
            if kept is None:
                if len(self.kept) >= KEPT_FILTERS:
                    self.kept.clear()
                tests = wanted.tests()
                kept = [row for row in self.rows if all(test(row) for test in tests)]
                self.kept[wanted] = kept
            return kept

    def view(self, by: str, dates: IncidentFilter) -> ConsistencyView:
        """The `--by` view of the incidents in the date filter; its medians run over every
        attendance, so once per grouping, dates and catalogue state."""
        assert self.policy is not None
        with self.working:
            if (by, dates) not in self.views:
                if len(self.views) >= KEPT_FILTERS:
                    self.views = {key: v for key, v in self.views.items() if key[1] == _ALL}
                tally = self.tally if dates == _ALL else self._tally(dates)
                self.views[by, dates] = consistency(tally, self.officers, self.policy, by)
            return self.views[by, dates]

    def _tally(self, dates: IncidentFilter) -> Tally:
        tests = dates.day_tests()
        chosen = [self.verdicts[row.incident_ref] for row in self.rows
                  if all(test(row) for test in tests)]  # fmt: skip
        return Tally.of(chosen, self.officers)


_ALL = IncidentFilter()


_cache: dict[str, _Judged] = {}
_lock = threading.Lock()  # held briefly: the cache and the change check
_judging = threading.Lock()  # held while judging: one at a time, the others wait for it


def incident_rows(engine: Engine, policy: Policy | None = None) -> list[IncidentRow]:
    """Every incident's verdict, worst first; judged again only after the catalogue changed."""
    return _judged(engine, policy).rows


def _judged(engine: Engine, policy: Policy | None = None) -> _Judged:
    policy = policy or load_policy(None)
    key = f"{engine.url}|{policy.source}"
    with _judging:
        with _lock:
            signature = _signature(engine)
            judged = _cache.get(key)
            if judged is not None and judged.signature == signature:
                return judged
            _cache.pop(key, None)  # the old verdicts go before the new are judged
        gc.unfreeze()  # and what was kept from the collector with them goes back to it
        judged = _judge_rows(engine, policy)
        judged.signature = signature
        with _lock:
            _cache[key] = judged
        if len(judged.rows) >= FREEZE_FROM:
            _out_of_the_collector()
        return judged


def _out_of_the_collector() -> None:
    """The kept verdicts of a force are millions of objects that live until the catalogue
    changes; a full cyclic garbage collection walking them takes seconds, and every
    request waits for it (uvicorn even ends a worker that stops answering for 5 s).
    Frozen, the collector never looks at them. Freezing is instant; only the young
    generations are collected first, so no garbage of the judging is frozen with them."""
    gc.collect(1)
    gc.freeze()


def _fresh(engine: Engine, policy: Policy) -> _Judged | None:
    """The judged catalogue if it is judged and still current, else None (never judges:
    one incident's page must not wait for the whole catalogue to be judged again)."""
    with _lock:
        judged = _cache.get(f"{engine.url}|{policy.source}")
        if judged is None or judged.signature != _signature(engine):
            return None
        return judged


_checked: dict[str, tuple[int, Any]] = {}  # engine url -> (last event seen, last change)


def _signature(engine: Engine) -> tuple[Any, ...]:
    """The id of the latest audited change. Views are audited too, so the trail grows on
    every request: only the events since the last check are looked at, by id (the primary
    key), never the whole trail. Called with `_lock` held."""
    key = str(engine.url)
    seen, changed = _checked.get(key, (0, None))
    with read_connection(engine) as connection:
        last = connection.execute(_LAST_EVENT).scalar() or 0
        if last < seen:  # another catalogue now at this address: start again
            seen, changed = 0, None
        if last != seen:
            newer = connection.execute(_LAST_CHANGE, {"seen": seen}).scalar()
            changed = newer or changed
            _checked[key] = (last, changed)
    return (changed,)


_LAST_EVENT = sa_select(func.max(AuditEvent.id))
_LAST_CHANGE = sa_select(func.max(AuditEvent.id)).where(
    col(AuditEvent.id) > bindparam("seen"), col(AuditEvent.action).in_(CHANGES)
)


def _judge_rows(engine: Engine, policy: Policy) -> _Judged:
    with read_scope(engine) as session:
        evidence = load_evidence(session, policy=policy, period=Period())
    officers = evidence.officers
    verdicts = judge_all(evidence, policy)
    rows = []
    for v in verdicts:
        attending = tuple(a.officer_id for a in v.evidence.attendance)
        known = [officers[o] for o in attending if o in officers]
        rows.append(
            IncidentRow(
                v.incident.incident_ref, v.incident.type, v.incident.reported_at, v.verdict,
                tuple(r.code for r in v.reasons), tuple(f.code for f in v.findings), attending,
                tuple(o.team for o in known), tuple(o.station for o in known),
                tuple(link.clip.clip_id for link in v.evidence.links),
                v.incident.reported_at.strftime("%Y-%m-%d"),
            )
        )  # fmt: skip
    by_ref = {v.incident.incident_ref: v for v in verdicts}
    judged = _Judged(rows=rows, tally=Tally.of(verdicts, officers), officers=officers,
                     policy=policy, verdicts=by_ref)  # fmt: skip
    for row in rows:
        judged.by_verdict.setdefault(row.verdict, []).append(row)
    for by in GROUPINGS:  # a second or so here rather than on five first requests
        judged.view(by, _ALL)
    return judged


@dataclass(frozen=True)
class Page:
    rows: list[IncidentRow]
    total: int
    page: int
    pages: int


def incidents_page(engine: Engine, wanted: IncidentFilter, page: int) -> Page:
    kept = _judged(engine).matching(wanted)
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return Page(kept[start : start + PAGE_SIZE], len(kept), page, pages)


@dataclass(frozen=True)
class GroupsPage:
    """One page of the consistency view (`bwv report --by`): the force-wide line, a page of
    groups (never more than PAGE_SIZE rendered) and the flag rule."""

    view: ConsistencyView  # its groups cut to this page
    total: int
    page: int
    pages: int
    charts: dict[str, str] = field(default_factory=dict)  # rates, arrivals, table (HTML)


def consistency_page(
    engine: Engine, by: str, page: int, dates: IncidentFilter = _ALL
) -> GroupsPage:
    """The `--by` figures of every incident in the date filter (month, since, until), from
    the verdicts judged with the incident list; its charts drawn once per state."""
    if by not in GROUPINGS:
        raise BwvError(f"unknown grouping {by!r}; expected one of {', '.join(GROUPINGS)}")
    judged = _judged(engine)
    view = judged.view(by, dates.dates())
    pages = max(1, -(-len(view.groups) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    cut = replace(view, groups=view.groups[start : start + PAGE_SIZE])
    key = (by, dates.dates(), page)
    charts = judged.charts.get(key)
    if charts is None:
        if len(judged.charts) >= KEPT_FILTERS:
            judged.charts.clear()
        charts = judged.charts[key] = _charts(cut)
    return GroupsPage(cut, len(view.groups), page, pages, charts)


def _charts(view: ConsistencyView) -> dict[str, str]:
    """The consistency view's charts and table, as the HTML report draws them (escaped)."""
    from compliance.report_html import arrival_chart, group_table, rate_chart

    by = view.by
    return {"rates": rate_chart(view, f"Activation and child-voice capture by {by}"),
            "arrivals": arrival_chart(view, f"Time to first arrival by {by}"),
            "table": group_table(view)}  # fmt: skip


@dataclass(frozen=True)
class QueueItem:
    row: IncidentRow
    clip_id: int | None
    seek_s: float  # where the segment most likely to be a child's starts
    child_probability: float | None


def review_queue(engine: Engine, page: int) -> tuple[list[QueueItem], Page]:
    """needs_review incidents, worst first: fewest child seconds heard, then oldest."""
    listed = incidents_page(engine, IncidentFilter(verdict="needs_review"), page)
    with read_scope(engine) as session:
        items = [_queue_item(session, row) for row in listed.rows]
    return items, listed


def _queue_item(session: Session, row: IncidentRow) -> QueueItem:
    """Opens at the incident's likeliest child segment: the first of the candidates that
    `CHILD_VOICE_NOT_DETECTED` evidence lists (one rule, `compliance.candidates`)."""
    if not row.clip_ids:
        return QueueItem(row, None, 0.0, None)
    found = likeliest_segments(session, list(row.clip_ids))
    if not found:
        return QueueItem(row, row.clip_ids[0], 0.0, None)
    best = found[0]
    return QueueItem(row, best["clip_id"], best["start_s"], best["child_probability"])


@dataclass(frozen=True)
class ClipPage:
    detail: ClipDetail
    extras: dict[str, Any]  # review, examples, links, has_thumbnail


def clip_page(engine: Engine, clip_id: int, *, actor: str, threshold: float) -> ClipPage:
    """A clip in full with its review, examples and incidents, read in one snapshot; the
    view is audited (committed) before the page is shown."""
    with read_scope(engine) as session:
        detail = read_clip_detail(session, clip_id, threshold)
        extras = _clip_extras(session, clip_id)
    audit_clip_view(engine, detail, actor=actor)
    return ClipPage(detail, extras)


def _of_clip(model: Any) -> Any:
    """A clip's rows of `model` as a statement built once (see `catalogue._by_clip`)."""
    t = model.__table__
    return sa_select(t).where(t.c.clip_id == bindparam("clip_id")).order_by(t.c.id)


_REVIEW, _EXAMPLES, _LINKS = _of_clip(VoiceReview), _of_clip(Example), _of_clip(ClipLink)
_THUMBNAIL = sa_select(Derivative.__table__.c.id).where(  # type: ignore[attr-defined]
    Derivative.__table__.c.clip_id == bindparam("clip_id"),  # type: ignore[attr-defined]
    Derivative.__table__.c.kind == "thumbnail",  # type: ignore[attr-defined]
)


def _clip_extras(session: Session, clip_id: int) -> dict[str, Any]:
    """A clip's review, examples, linked incidents and whether it has a thumbnail, as
    plain rows (read by attribute like the models)."""
    run, key = session.connection().execute, {"clip_id": clip_id}
    return {"review": run(_REVIEW, key).first(), "examples": run(_EXAMPLES, key).all(),
            "links": run(_LINKS, key).all(),
            "has_thumbnail": run(_THUMBNAIL, key).first() is not None}  # fmt: skip


def require_clip(engine: Engine, clip_id: int) -> None:
    with read_scope(engine) as session:
        if session.get(Clip, clip_id) is None:
            raise NotFound(f"no clip {clip_id} in the catalogue")


def _thumbnail(session: Session, clip_id: int) -> Derivative | None:
    query = select(Derivative).where(
        Derivative.clip_id == clip_id, col(Derivative.kind) == "thumbnail"
    )
    return session.exec(query).first()


def thumbnail(engine: Engine, clip_id: int) -> bytes:
    with read_scope(engine) as session:
        found = _thumbnail(session, clip_id)
        if found is None or found.content is None:
            raise NotFound(f"clip {clip_id} has no thumbnail")
        return found.content


@dataclass(frozen=True)
class Media:
    path: Path
    media_type: str
    size: int


def media_file(engine: Engine, clip_id: int) -> Media:
    """The original (opened read-only by the caller), else its store copy; found by id only."""
    with read_scope(engine) as session:
        clip = session.get(Clip, clip_id)
        if clip is None:
            raise NotFound(f"no clip {clip_id} in the catalogue")
        copies = select(Derivative.path).where(
            Derivative.clip_id == clip_id, col(Derivative.kind) == "store_copy"
        )
        candidates = [clip.path, *(p for p in session.exec(copies).all() if p)]
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            kind = "video/webm" if path.suffix.lower() == ".webm" else "video/mp4"
            return Media(path, kind, path.stat().st_size)
    raise NotFound(f"clip {clip_id}: neither the original nor a store copy can be found")


def audit_playback(engine: Engine, clip_id: int, *, actor: str, example: int | None) -> None:
    """One event per playback started (a request from byte 0), not per seek or chunk."""
    objects = [f"clip:{clip_id}"] + ([f"example:{example}"] if example else [])
    audit.record_committed(engine, actor=actor, action="play", object_ids=objects)


def add_example(
    engine: Engine, clip_id: int, span: tuple[float, float], what: dict[str, str], actor: str
) -> Example:
    """A trainer's (or inspector's) example, not playable by trainers until approved."""
    practice = what.get("practice", "")
    if practice not in PRACTICES:
        raise BwvError("practice must be good or poor")
    start, end = span
    with session_scope(engine) as session:
        clip = session.get(Clip, clip_id)
        if clip is None:
            raise NotFound(f"no clip {clip_id} in the catalogue")
        if not 0 <= start < end or (clip.duration_s is not None and end > clip.duration_s + 0.5):
            raise BwvError(f"the span {start:g}-{end:g} s is not inside clip {clip_id}")
        tags = ",".join(t.strip() for t in what.get("tags", "").split(",") if t.strip())
        example = Example(
            clip_id=clip_id, start_s=start, end_s=end, practice=practice,
            tags=tags[:500], notes=what.get("notes", "")[:4000], actor=actor,
        )  # fmt: skip
        session.add(example)
        session.flush()
        audit.record(session, actor=actor, action="example_add",
                     object_ids=[f"example:{example.id}", f"clip:{clip_id}"],
                     details={"practice": practice, "start_s": start, "end_s": end})  # fmt: skip
    return example


def approve_example(engine: Engine, example_id: int, actor: str) -> None:
    with session_scope(engine) as session:
        example = session.get(Example, example_id)
        if example is None:
            raise NotFound(f"no example {example_id}")
        example.approved_by, example.approved_at = actor, utc_now()
        session.add(example)
        audit.record(session, actor=actor, action="example_approve",
                     object_ids=[f"example:{example_id}", f"clip:{example.clip_id}"])  # fmt: skip


def examples(engine: Engine, practice: str = "", tag: str = "") -> list[Example]:
    query = select(Example).order_by(col(Example.created_at).desc())
    if practice:
        query = query.where(Example.practice == practice)
    with read_scope(engine) as session:
        found = list(session.exec(query).all())
        session.expunge_all()
    return [e for e in found if not tag or tag in e.tags.split(",")]


def example(engine: Engine, example_id: int, *, approved_only: bool, actor: str) -> Example:
    """One example; a trainer sees it only once approved; each view is audited."""
    with session_scope(engine) as session:
        found = session.get(Example, example_id)
        if found is None:
            raise NotFound(f"no example {example_id}")
        if approved_only and found.approved_at is None:
            raise AccessDenied(f"example {example_id} is not yet approved by an inspector")
        audit.record(session, actor=actor, action="example_view",
                     object_ids=[f"example:{example_id}", f"clip:{found.clip_id}"])  # fmt: skip
    return found


@dataclass(frozen=True)
class IncidentPage:
    detail: IncidentDetail
    record: ChildRecord  # the incident's child record, shown as a panel
    bars: list[Bar]


def incident_page(engine: Engine, ref: str, *, actor: str) -> IncidentPage:
    """One incident judged once for its facts, timeline and child record; the view is
    audited in its own short transaction, so readers never queue on the write lock."""
    checked_zone()
    policy = load_policy(None)
    judged = _fresh(engine, policy)
    with read_scope(engine) as session:
        kept = judged.verdicts.get(ref) if judged is not None else None
        if kept is None:
            detail = judge_incident(session, ref, policy)
        else:
            assert judged is not None
            detail = _detail(session, kept, judged.officers, policy)
        record = record_of(session, detail, policy, actor=actor, reason="")
    audit_incident_view_now(engine, detail, actor=actor)
    return IncidentPage(detail, record, timeline(detail.verdict))


def _detail(
    session: Session, kept: IncidentVerdict, officers: dict[str, OfficerFacts], policy: Policy
) -> IncidentDetail:
    """The incident page's detail from the verdict judged with the list (the same rules
    judged on the same rows as `judge_incident`), with its candidate segments attached
    to a copy: the kept verdict is shared by every request."""
    verdict = replace(kept, reasons=[Reason(r.code, dict(r.evidence)) for r in kept.reasons])
    attach_candidates(session, [verdict])
    present = {a.officer_id for a in verdict.evidence.attendance}
    own = {o: officers[o] for o in present if o in officers}
    return IncidentDetail(verdict=verdict, officers=own, policy=policy)


@dataclass(frozen=True)
class Bar:
    label: str
    kind: str  # attendance | clip
    x: float  # percent of the timeline's width
    width: float
    start: datetime
    end: datetime


def timeline(verdict: Any) -> list[Bar]:
    """Each officer's attendance and each linked clip's recording span on one time axis."""
    spans = [(f"{a.officer_id} attended", "attendance", a.arrived_at, a.left_at)
             for a in verdict.evidence.attendance]  # fmt: skip
    for link in verdict.evidence.links:
        clip = link.clip
        if clip.started_at is not None:
            end = clip.ended_at or clip.started_at
            spans.append((f"clip {clip.clip_id} ({link.officer_id or '?'})", "clip",
                          clip.started_at, end))  # fmt: skip
    if not spans:
        return []
    low, high = min(s[2] for s in spans), max(s[3] for s in spans)
    whole = max((high - low).total_seconds(), 1.0)
    return [
        Bar(label, kind, 100 * (start - low).total_seconds() / whole,
            max(100 * (end - start).total_seconds() / whole, 0.5), start, end)
        for label, kind, start, end in spans
    ]  # fmt: skip
