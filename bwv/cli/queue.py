"""`bwv worker` and `bwv queue ...`: the job queue (ingest, redaction) of a PostgreSQL catalogue.

Procrastinate and psycopg are imported inside the commands (through
`bwv.services.queue`) so `bwv --help` stays instant.
"""

from __future__ import annotations

from typing import Any

import click

from bwv.cli.common import AppContext, echo, emit_json, json_option, pass_app


@click.command("worker", short_help="Take ingest and redaction jobs from the queue (PostgreSQL).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Files processed at once, each in a process that loads the model once.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    help="Threads per process for the model (default: cores / concurrency).",
)
@click.option(
    "--queues",
    default="ingest,links,redact,maintenance",
    show_default=True,
    help="Comma-separated queues to take jobs from.",
)
@pass_app
def worker_command(app: AppContext, concurrency: int, threads: int | None, queues: str) -> None:
    """Run queued ingest and redaction jobs until SIGINT or SIGTERM; reconnects when the
    database goes."""
    from bwv.services.queue import QUEUES, require_postgres, run_worker

    wanted = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = sorted(set(wanted) - set(QUEUES))
    if not wanted or unknown:
        raise click.BadParameter(
            f"unknown queue {', '.join(unknown) or '(none)'}; known: {', '.join(QUEUES)}",
            param_hint="--queues",
        )
    require_postgres(app.engine)
    _quiet_procrastinate()
    run_worker(app.engine, concurrency=concurrency, threads=threads, queues=wanted, on_event=_say)


def _say(line: str) -> None:
    echo(line, err=True)


def _quiet_procrastinate() -> None:
    # Procrastinate logs every job at INFO; the worker prints its own few lines, and a
    # job that failed (or will be retried) as one line without the traceback.
    import logging

    class OneLine(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            return ""

        def format(self, record: logging.LogRecord) -> str:
            reason = f": {record.exc_info[1]}" if record.exc_info else ""
            record.exc_info, record.exc_text = None, None
            return super().format(record).splitlines()[0] + reason

    handler = logging.StreamHandler()
    handler.setFormatter(OneLine("%(message)s"))
    logger = logging.getLogger("procrastinate")
    logger.setLevel(logging.ERROR)
    logger.addHandler(handler)
    logger.propagate = False


@click.group("queue", short_help="The job queue: status, retry (PostgreSQL).")
def queue_group() -> None:
    """Look at and act on the job queue (ingest, redaction) of a PostgreSQL catalogue."""


@queue_group.command("status")
@json_option
@pass_app
def queue_status_command(app: AppContext, as_json: bool) -> None:
    """Pending, running, failed and done jobs per queue; the oldest pending job's age."""
    from bwv.services.queue import queue_status

    rows = queue_status(engine=app.engine)
    if as_json:
        emit_json(rows)
        return
    echo(f"{'QUEUE':<12} {'PENDING':>8} {'RUNNING':>8} {'FAILED':>8} {'DONE':>8}  OLDEST PENDING")
    for r in rows:
        age = "-" if r.oldest_pending_s is None else f"{r.oldest_pending_s:.0f} s"
        echo(f"{r.queue:<12} {r.pending:>8} {r.running:>8} {r.failed:>8} {r.done:>8}  {age}")


@queue_group.command("retry")
@click.option("--failed", "failed", is_flag=True, required=True, help="Re-enqueue failed jobs.")
@pass_app
def queue_retry_command(app: AppContext, failed: bool) -> None:
    """Put every failed job back in the queue."""
    from bwv.services.queue import retry_failed_jobs

    count = retry_failed_jobs(engine=app.engine, actor=app.actor)
    echo(f"Re-enqueued {count} failed job(s)")


def print_enqueue_summary(summary: Any) -> None:
    echo(
        f"Queued {summary.queued}, already pending {summary.pending}, "
        f"already catalogued {summary.done}, rejected {len(summary.rejected)}"
    )
    for path, reason in summary.rejected:
        echo(f"  not queued: {path}: {reason}")


COMMANDS: list[click.Command] = [worker_command, queue_group]
