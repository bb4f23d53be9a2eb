"""The ingest queue: one job per file, kept in the PostgreSQL catalogue by Procrastinate.

A force's footage arrives at many docking stations; `bwv ingest --queue` only walks the
paths and enqueues, and `bwv worker` on any machine with the same catalogue URL and the
footage at the same path (a shared mount) takes jobs. A job is today's per-file pipeline
(in a pool of processes, each loading the model once) and today's writer: one
transaction per file with its audit event, so a job killed anywhere leaves nothing half
written, and running it again finds the clip by its SHA-256 instead of adding it twice.

Failure is sorted three ways. Unreadable media is a fact about the file: it is recorded
as a failed clip with its reason and the job succeeds (no retry). A database that is
away or busy for a moment (`CatalogueBusy`: connection lost, server restarting,
serialization failure) and an evidence store that cannot be written are retried with
exponential backoff. A worker that dies (SIGKILL, machine lost) stops its heartbeat; the
periodic `retry_stalled` job, run by any live worker, puts its jobs back in the queue.

Relinking is a job too, with a queueing lock, so at most one waits: links are computed
once for a batch of files rather than once per file.

The Redact page's detections and renders (`bwv.redact`, queue `redact`) are jobs too, on
PostgreSQL: minutes of CPU that must outlive a restart of the web app and run again when
their worker dies. The job carries only the id of its `RedactionJob` row, which says
what to do and which the job writes as it goes (see `bwv.services.redaction_web`).

Procrastinate and psycopg are imported only here and only when the queue is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url, text
from sqlmodel import col, select

from bwv.core.audit import record
from bwv.core.db import is_postgres, read_scope, session_scope
from bwv.core.errors import BwvError, CatalogueBusy
from bwv.core.models import Clip
from ingest.provenance import path_text
from ingest.worker import IngestOptions, discover

INGEST_QUEUE = "ingest"
LINKS_QUEUE = "links"
REDACT_QUEUE = "redact"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (INGEST_QUEUE, LINKS_QUEUE, REDACT_QUEUE, MAINTENANCE_QUEUE)
MAX_ATTEMPTS = 8
RELINK_LOCK = "bwv relink"


def stall_seconds() -> float:
    """How long without a heartbeat before a worker's jobs are taken back (default 60 s;
    `BWV_QUEUE_STALL_S` to change). Heartbeats come four times as often."""
    return max(2.0, float(os.environ.get("BWV_QUEUE_STALL_S", "60")))


class QueueNeedsPostgres(BwvError):
    """The queue lives in PostgreSQL; a SQLite catalogue has none."""


class Unfinished(Exception):
    """The file could not be finished now (evidence store not writable): retried."""


def require_postgres(engine: Engine) -> None:
    if not is_postgres(engine):
        raise QueueNeedsPostgres(
            "the ingest queue needs a PostgreSQL catalogue: set BWV_DATABASE_URL "
            "(or --db) to postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
            "(see README, Scale out); a SQLite catalogue ingests without --queue"
        )


def libpq_url(engine: Engine) -> str:
    """The catalogue's URL as libpq spells it (Procrastinate connects with it)."""
    url = make_url(engine.url.render_as_string(hide_password=False))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- enqueueing -------------------------------------------------------------------


@dataclass
class EnqueueSummary:
    queued: int = 0
    pending: int = 0  # a job for the file was already waiting (queueing lock)
    done: int = 0  # the file is catalogued already
    rejected: list[tuple[str, str]] = field(default_factory=list)


def enqueue(
    paths: list[Path], *, engine: Engine, actor: str, options: IngestOptions
) -> EnqueueSummary:
    """One job per media file under `paths` not yet catalogued nor waiting; audited once."""
    require_postgres(engine)
    found = discover(paths, follow_symlinks=options.follow_symlinks)
    summary = EnqueueSummary(rejected=found.problems)
    shown_paths = [path_text(path) for path in found.files]
    done = _catalogued_paths(engine, shown_paths, retry_failed=options.retry_failed)
    job_options = _job_options(options)
    with _opened(make_app(engine)) as app:
        for shown in shown_paths:
            if shown in done:
                summary.done += 1
            elif _defer_file(app, shown, job_options, actor):
                summary.queued += 1
            else:
                summary.pending += 1
    with session_scope(engine) as session:
        details = {k: v for k, v in asdict(summary).items() if k != "rejected"}
        record(session, actor=actor, action="enqueue", details=details | {"options": job_options})
    return summary


def _catalogued_paths(engine: Engine, paths: list[str], *, retry_failed: bool) -> frozenset[str]:
    """Which of `paths` are catalogued already, asked in batches (a force's catalogue
    holds millions of clips: never load them all)."""
    found: set[str] = set()
    with read_scope(engine) as session:
        for start in range(0, len(paths), 1_000):
            query = select(Clip.path).where(col(Clip.path).in_(paths[start : start + 1_000]))
            if retry_failed:
                query = query.where(Clip.status != "failed")
            found.update(session.exec(query).all())
    return frozenset(found)


def _job_options(options: IngestOptions) -> dict[str, Any]:
    """What a worker needs to process the file as this command was asked to."""
    return {
        "model": options.model,
        "language": options.language,
        "transcribe": options.transcribe,
        "child_voice": options.child_voice,
        "store": str(options.store.resolve()) if options.store else None,
        "retry_failed": options.retry_failed,
    }


def _defer_file(app: Any, path: str, job_options: dict[str, Any], actor: str) -> bool:
    from procrastinate.exceptions import AlreadyEnqueued

    task = app.tasks["bwv.ingest_file"].configure(queueing_lock=f"ingest {path}")
    try:
        task.defer(path=path, options=job_options, actor=actor)
    except AlreadyEnqueued:
        return False
    return True


@contextlib.contextmanager
def _opened(app: Any) -> Iterator[Any]:
    try:
        app.open()
    except Exception as exc:
        raise CatalogueBusy(f"cannot reach the queue: {_first_line(exc)}") from exc
    try:
        yield app
    finally:
        app.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# --- the Procrastinate app and its tasks ---------------------------------------------


def make_app(engine: Engine) -> Any:
    """A Procrastinate app on the catalogue's database, with bwv's four tasks."""
    from procrastinate import App, PsycopgConnector, RetryStrategy
    from procrastinate.exceptions import ConnectorException
    from psycopg import OperationalError

    app = App(connector=PsycopgConnector(conninfo=libpq_url(engine)))
    # The queue's own connection failing (deferring the relink) is transient too: the
    # job runs again, finds its clip stored by hash, and defers the relink then.
    retried = {CatalogueBusy, Unfinished, ConnectorException, OperationalError}
    transient = RetryStrategy(
        max_attempts=MAX_ATTEMPTS, exponential_wait=2, retry_exceptions=retried
    )
    app.task(name="bwv.ingest_file", queue=INGEST_QUEUE, retry=transient)(ingest_file)
    app.task(name="bwv.relink", queue=LINKS_QUEUE, retry=transient)(relink)
    redacting = app.task(name="bwv.redact", queue=REDACT_QUEUE, retry=transient, pass_context=True)
    redacting(redact)
    every = max(1, int(stall_seconds() // 4))
    stalled = app.task(name="bwv.retry_stalled", queue=MAINTENANCE_QUEUE, pass_context=True)
    app.periodic(cron=f"*/{every} * * * * *", periodic_id="stalls")(stalled(retry_stalled))
    return app


@dataclass
class WorkerState:
    """What one `bwv worker` process holds between jobs."""

    engine: Engine
    processes: int
    threads: int | None = None  # per process; default: this machine's cores shared out
    app: Any = None
    pools: dict[str, ProcessPoolExecutor] = field(default_factory=dict)

    def pool(self, options: IngestOptions) -> ProcessPoolExecutor:
        """The process pool for these options, started on first use (model loaded once)."""
        key = repr(options)
        if key not in self.pools:
            from ingest.config import load_config
            from ingest.worker import check_model, worker_pool

            check_model(options)
            threads = self.threads or max(1, (os.cpu_count() or 1) // self.processes)
            self.pools[key] = worker_pool(self.processes, threads, options, load_config())
        return self.pools[key]

    def warm(self) -> float:
        """Starts the pool a default `bwv ingest --queue` job uses and waits until each
        process has loaded the model: the first job is not slowed by it, and a model that
        cannot load stops the worker before it takes a job. Returns the seconds taken."""
        began = time.monotonic()
        pool = self.pool(_ingest_options(_job_options(IngestOptions())))
        try:
            for started in [pool.submit(os.getpid) for _ in range(self.processes)]:
                started.result()
        except BrokenProcessPool as exc:
            raise BwvError(f"the worker's processes could not load the model: {exc}") from exc
        return time.monotonic() - began

    def discard(self, pool: ProcessPoolExecutor) -> None:
        self.pools = {k: p for k, p in self.pools.items() if p is not pool}
        pool.shutdown(wait=False, cancel_futures=True)


_STATE: WorkerState | None = None


def _state() -> WorkerState:
    assert _STATE is not None, "bwv task run outside `bwv worker`"
    return _STATE


async def ingest_file(path: str, options: dict[str, Any], actor: str) -> int | None:
    """The job: process the file in the pool, store it in one audited transaction."""
    from ingest.worker import Skipped, store_safely, work_queued

    state = _state()
    ingest_options = _ingest_options(options)
    loop = asyncio.get_running_loop()
    pool = state.pool(ingest_options)
    try:
        outcome = await loop.run_in_executor(pool, work_queued, Path(path))
    except BrokenProcessPool as exc:  # a process died (killed, out of memory): new pool
        state.discard(pool)
        raise Unfinished(f"the processing pool broke: {exc}") from exc
    if isinstance(outcome, Skipped):
        return None
    if outcome.retry:
        raise Unfinished(outcome.failure or "not finished")
    retry = ingest_options.retry_failed
    clip_id, _ = await asyncio.to_thread(
        store_safely, outcome, engine=state.engine, actor=actor, retry=retry
    )
    await _defer_relink(state.app)
    return clip_id


def _ingest_options(options: dict[str, Any]) -> IngestOptions:
    store = options.get("store")
    return IngestOptions(
        model=str(options["model"]),
        language=str(options["language"]),
        transcribe=bool(options["transcribe"]),
        child_voice=bool(options["child_voice"]),
        store=Path(store) if store else None,
        retry_failed=bool(options.get("retry_failed")),
    )


async def _defer_relink(app: Any) -> None:
    from procrastinate.exceptions import AlreadyEnqueued

    task = app.tasks["bwv.relink"].configure(queueing_lock=RELINK_LOCK, lock=RELINK_LOCK)
    with contextlib.suppress(AlreadyEnqueued):
        await task.defer_async()


def relink() -> int:
    """The job: links recomputed once for whatever was stored since the last run."""
    from bwv.services.ingesting import relink as recompute

    return recompute(_state().engine).links


async def redact(context: Any, job_id: str) -> None:
    """The job: the Redact page's detection or render, run in a thread of the worker
    (its media work is OpenCV and ffmpeg, which leave the event loop free)."""
    from bwv.services.redaction_web import run_job

    last_try = context.job.attempts >= MAX_ATTEMPTS  # attempts before this one
    engine = _state().engine
    await asyncio.to_thread(run_job, engine, job_id, last_try=last_try, worker=True)


def redaction_lock(clip_id: int, kind: str) -> str:
    return f"redact {kind} clip {clip_id}"


def redaction_waiting(session: Any, clip_id: int, kind: str) -> bool:
    """Whether a Redact page job for the clip and kind waits in the queue (read in the
    caller's transaction, so a request can refuse before it writes anything)."""
    query = text(
        "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock AND status = 'todo'"
    )
    return bool(session.execute(query, {"lock": redaction_lock(clip_id, kind)}).scalar_one())


def defer_redaction(engine: Engine, job_id: str, clip_id: int, kind: str) -> bool:
    """Queues the Redact page's job; False when one for the clip and kind is already
    waiting (the queueing lock). The same lock keeps two of them from running at once."""
    from procrastinate.exceptions import AlreadyEnqueued

    require_postgres(engine)
    lock = redaction_lock(clip_id, kind)
    with _opened(make_app(engine)) as app:
        task = app.tasks["bwv.redact"].configure(queueing_lock=lock, lock=lock)
        try:
            task.defer(job_id=job_id)
        except AlreadyEnqueued:
            return False
    return True


async def retry_stalled(context: Any, timestamp: int) -> int:
    """The periodic job: jobs of workers whose heartbeat stopped go back in the queue."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=stall_seconds())
    for job in stalled:
        await manager.retry_job(job)
    await manager.prune_stalled_workers(stall_seconds())
    # These checks are a job every few seconds: an hour of them is history enough.
    await manager.delete_old_jobs(nb_hours=1, queue=MAINTENANCE_QUEUE)
    return len(list(stalled))


# --- the worker ------------------------------------------------------------------------


def run_worker(
    engine: Engine,
    *,
    concurrency: int,
    queues: tuple[str, ...],
    on_event: Any,
    threads: int | None = None,
) -> None:
    """Takes jobs until SIGINT or SIGTERM; a lost database is waited for, not fatal."""
    global _STATE
    require_postgres(engine)
    _STATE = WorkerState(engine, concurrency, threads)
    backoff = 1.0
    try:
        if INGEST_QUEUE in queues:
            on_event(f"model loaded in {_STATE.warm():.1f} s")
        while True:
            started = time.monotonic()
            stopped = asyncio.run(_serve(concurrency, queues, on_event))
            if stopped:
                return
            backoff = 1.0 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
            on_event(f"lost the database; reconnecting in {backoff:g} s")
            time.sleep(backoff)
    finally:
        for pool in _STATE.pools.values():
            pool.shutdown(cancel_futures=True)


async def _serve(concurrency: int, queues: tuple[str, ...], on_event: Any) -> bool:
    """One connected run of the worker; True when it was asked to stop."""
    state = _state()
    app = make_app(state.engine)
    state.app = app
    asked = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, asked.set)
    try:
        async with app.open_async():
            on_event(f"worker started: {concurrency} at a time on {', '.join(queues)}")
            await _run_until_asked(app, concurrency, queues, asked)
    except Exception as exc:  # the database went away under the worker: reconnect
        on_event(f"worker stopped: {_first_line(exc)}")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return asked.is_set()


async def _run_until_asked(
    app: Any, concurrency: int, queues: tuple[str, ...], asked: asyncio.Event
) -> None:
    stall = stall_seconds()
    worker = asyncio.create_task(
        app.run_worker_async(
            # One slot more than processes: relinking and stall checks never wait for
            # a long file; an ingest job beyond the pool waits for a process.
            concurrency=concurrency + 1,
            queues=list(queues),
            install_signal_handlers=False,
            update_heartbeat_interval=stall / 4,
            stalled_worker_timeout=stall,
            shutdown_graceful_timeout=stall,
        )
    )
    waiting = asyncio.create_task(asked.wait())
    await asyncio.wait({worker, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if asked.is_set():
        worker.cancel()
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


# --- status and retry ---------------------------------------------------------------


@dataclass(frozen=True)
class QueueCounts:
    queue: str
    pending: int
    running: int
    failed: int
    done: int
    oldest_pending_s: float | None


_STATUS = text(
    """
    SELECT j.queue_name,
           count(*) FILTER (WHERE j.status = 'todo'),
           count(*) FILTER (WHERE j.status = 'doing'),
           count(*) FILTER (WHERE j.status = 'failed'),
           count(*) FILTER (WHERE j.status = 'succeeded'),
           extract(epoch FROM now() - min(e.at) FILTER (WHERE j.status = 'todo'))
      FROM procrastinate_jobs j
      LEFT JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
     GROUP BY j.queue_name ORDER BY j.queue_name
    """
)


def queue_status(*, engine: Engine) -> list[QueueCounts]:
    """Pending, running, failed and done jobs per queue, and the oldest pending's age."""
    require_postgres(engine)
    with read_scope(engine) as session:
        rows = session.execute(_STATUS).all()
    found = {row[0]: _counts(*row) for row in rows}
    return [found.get(name, QueueCounts(name, 0, 0, 0, 0, None)) for name in QUEUES] + [
        counts for name, counts in found.items() if name not in QUEUES
    ]


def _counts(
    queue: str, pending: int, running: int, failed: int, done: int, age: Any
) -> QueueCounts:
    oldest = None if age is None else round(float(age), 1)
    return QueueCounts(queue, pending, running, failed, done, oldest)


def retry_failed_jobs(*, engine: Engine, actor: str) -> int:
    """Every failed job back in the queue, now; audited with how many."""
    require_postgres(engine)
    retry = text(
        "SELECT procrastinate_retry_job_v2(id, now(), NULL, NULL, NULL) "
        "FROM procrastinate_jobs WHERE status = 'failed'"
    )
    with session_scope(engine) as session:
        count = len(session.execute(retry).all())
        record(session, actor=actor, action="queue_retry", details={"jobs": count})
    return count
