"""Judging a force's year on every core.

A report over 100,000 incidents is a few seconds of SQLite reads and several more of
pure-Python judging and JSON building, and both split cleanly by incident. The period is
cut by `reported_at` into parts of about equal size; this process judges the first while
forked workers judge the others, each in its own read-only snapshot. A worker sends back
only what crosses a process boundary cheaply: its tally (see `tally`) and, for the JSON
contract, each incident's entry already encoded. Because the parts are consecutive
ranges of `reported_at`, putting them back together in the report's order (worst verdict
first, then oldest) is a concatenation per verdict, not a sort; unassigned clips, listed
per part by start time over the same ranges, concatenate the same way.

Small reports, reports whose verdict objects are needed whole (table, CSV, HTML), and
processes that cannot fork safely (another thread running) are judged in one part here.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlmodel import Session

from bwv.core.db import read_scope
from bwv.core.models import Incident
from compliance.bulk import paused_gc
from compliance.candidates import attach_candidates
from compliance.facts import Period, UnassignedClip, load_evidence, unassigned_clips
from compliance.policy import Policy
from compliance.rawtime import naive, raw
from compliance.tally import Tally
from compliance.verdicts import VERDICTS, IncidentVerdict, judge_all

MIN_PART_INCIDENTS = 20_000  # below this, starting a worker costs more than it saves
CHUNK_INCIDENTS = 10_000  # judged at a time within a part, so memory is reused while hot

Encoder = Callable[[IncidentVerdict], bytes]


@dataclass
class JudgedPart:
    tally: Tally
    verdicts: list[IncidentVerdict] = field(default_factory=list)  # when kept, worst first
    # Encoded entries by verdict, in runs: one per chunk, its entries joined by the
    # separator. A few large runs cost far less memory and pickling than many entries.
    entries: dict[str, list[bytes]] = field(default_factory=dict)
    unassigned: list[UnassignedClip] = field(default_factory=list)  # clips started in it

    def add(self, other: JudgedPart) -> None:
        self.tally.add(other.tally)
        self.verdicts += other.verdicts
        self.unassigned += other.unassigned
        for verdict, encoded in other.entries.items():
            self.entries.setdefault(verdict, []).extend(encoded)

    def ordered_entries(self) -> list[bytes]:
        """The runs in the report's order: worst verdict first, then oldest."""
        return [entry for verdict in VERDICTS for entry in self.entries.get(verdict, [])]


@dataclass(frozen=True)
class Judging:
    """How to judge a period, and what to keep of it."""

    policy: Policy
    keep_verdicts: bool = False  # the verdict objects, whole (judged in this process)
    encode: Encoder | None = None  # each incident's entry, encoded
    separator: bytes = b","  # between encoded entries within a run
    groupings: tuple[str, ...] = ()  # the `--by` groupings to tally


def judge_period(engine: Engine, judging: Judging, period: Period) -> JudgedPart:
    """Every incident of `period` judged, in parallel parts when it is large enough."""
    parts = [period]
    if not judging.keep_verdicts:
        parts = _split(engine, period, most=_usable_cores(), each_at_least=MIN_PART_INCIDENTS)
    if len(parts) == 1:
        return judge_part(engine, judging, parts[0])
    fork = multiprocessing.get_context("fork")
    workers = len(parts) - 1
    with ProcessPoolExecutor(workers, fork, initializer=_adopt_engine, initargs=(engine,)) as pool:
        futures = [pool.submit(_judge_in_worker, judging, part) for part in parts[1:]]
        whole = judge_part(engine, judging, parts[0])
        for future in futures:
            whole.add(future.result())
    return whole


def judge_part(engine: Engine, judging: Judging, period: Period) -> JudgedPart:
    """One process's share, a chunk at a time unless the verdicts are kept whole.

    A chunk's evidence and verdicts are dropped before the next is loaded: memory stays
    bounded, and reusing it is much cheaper than touching fresh pages (page faults were
    a fifth of a force-sized report's time when a part was judged all at once).
    """
    chunks = [period]
    if not judging.keep_verdicts:
        chunks = _split(engine, period, most=1_000, each_at_least=CHUNK_INCIDENTS)
    with paused_gc():
        judged = JudgedPart(Tally())
        for chunk in chunks:
            judged.add(_judge_chunk(engine, judging, chunk))
        return judged


def _judge_chunk(engine: Engine, judging: Judging, period: Period) -> JudgedPart:
    with read_scope(engine) as session:
        evidence = load_evidence(session, policy=judging.policy, period=period)
        unassigned = unassigned_clips(session, period)
        verdicts = judge_all(evidence, judging.policy)
        attach_candidates(session, verdicts)
    tally = Tally.of(verdicts, evidence.officers, judging.groupings)
    judged = JudgedPart(tally, verdicts if judging.keep_verdicts else [], {}, unassigned)
    if judging.encode is not None:
        encoded: dict[str, list[bytes]] = {}
        for verdict in verdicts:
            encoded.setdefault(verdict.verdict, []).append(judging.encode(verdict))
        judged.entries = {key: [judging.separator.join(run)] for key, run in encoded.items()}
    return judged


def _usable_cores() -> int:
    """Cores to judge on: one unless this process may fork (Linux, no other thread)."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _split(engine: Engine, period: Period, *, most: int, each_at_least: int) -> list[Period]:
    """`period` cut at `reported_at` values into up to `most` parts of similar size."""
    with read_scope(engine) as session:
        count = session.execute(_reported(period, func.count())).scalar_one()
        wanted = min(most, count // each_at_least)
        if wanted < 2:
            return [period]
        cuts = [_nth_reported(session, period, count * k // wanted) for k in range(1, wanted)]
    edges = [period.since, *cuts, period.until]
    return [Period(since, until) for since, until in pairwise(edges)]


def _reported(period: Period, column: Any) -> Select[Any]:
    c = Incident.__table__.c  # type: ignore[attr-defined]
    query = select(column).select_from(Incident.__table__)  # type: ignore[attr-defined]
    if period.since is not None:
        query = query.where(c.reported_at >= period.since)
    if period.until is not None:
        query = query.where(c.reported_at < period.until)
    return query


def _nth_reported(session: Session, period: Period, offset: int) -> datetime:
    c = Incident.__table__.c  # type: ignore[attr-defined]
    query = _reported(period, raw(c.reported_at)).order_by(c.reported_at)
    moment = naive(session.execute(query.offset(offset).limit(1)).scalar_one())
    assert moment is not None
    return moment.replace(tzinfo=UTC)


# Set in each forked worker: the parent's engine, with the parent's pooled connections
# forgotten (closing them here would close the parent's), so the worker opens its own.
_worker_engine: Engine | None = None


def _adopt_engine(engine: Engine) -> None:
    global _worker_engine
    engine.dispose(close=False)
    _worker_engine = engine


def _judge_in_worker(judging: Judging, period: Period) -> JudgedPart:
    assert _worker_engine is not None, "worker started without an engine"
    return judge_part(_worker_engine, judging, period)
