"""One PostgreSQL catalogue shared by ingest workers: a real throw-away cluster, real
worker processes, real sample clips; nothing of the database or the queue is mocked.

Workers run as `bwv worker` subprocesses with a short stall timeout (4 s), so a worker
killed with SIGKILL is noticed within seconds rather than a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_scripts import bench_module
from click.testing import CliRunner
from sqlalchemy import text

from bwv.cli import main
from bwv.core.db import get_engine, read_scope, session_scope

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_media"

scale_bench = bench_module("scale")  # its footage: the same files the benchmark times
READABLE = scale_bench.READABLE
STALL_S = "4"


def bwv(url: str, *args: object) -> subprocess.CompletedProcess[str]:
    env = _env(url)
    command = [sys.executable, "-c", "from bwv.cli import run; run()", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), BWV_DATABASE_URL=url)
    return env | {"BWV_QUEUE_STALL_S": STALL_S, "BWV_ACTOR": "tester"}


def start_worker(url: str, log: Path, concurrency: int = 1) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from bwv.cli import run; run()", "worker"]
    return subprocess.Popen(
        [*command, "--concurrency", str(concurrency)],
        env=_env(url),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL takes its pool too
    )


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def clips_folder(tmp_path: Path, copies: int = 2) -> Path:
    """`copies` distinct files per readable sample (a different tail, so a different
    SHA-256), plus the unreadable sample: more files than workers."""
    media: Path = scale_bench.footage(tmp_path, copies)
    shutil.copy(SAMPLES / "X60390012_20240518_140000.mp4", media)
    return media


def import_sample_records(url: str) -> None:
    for kind in ("officers", "assignments", "incidents", "attendance"):
        result = bwv(url, "import", kind, SAMPLES / f"{kind}.csv")
        assert result.returncode == 0, result.stderr


def jobs(url: str) -> dict[str, int]:
    with read_scope(get_engine(url)) as session:
        rows = session.execute(
            text("SELECT status::text, count(*) FROM procrastinate_jobs "
                 "WHERE queue_name = 'ingest' GROUP BY status")
        ).all()  # fmt: skip
    return {status: count for status, count in rows}


def wait_for(predicate, timeout: float = 240.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting; jobs: {LAST_URL and job_rows(LAST_URL[0])}")


LAST_URL: list[str] = []  # the catalogue of the test running, for the message above


def job_rows(url: str) -> list[tuple[object, ...]]:
    query = (
        "SELECT id, queue_name, status::text, attempts, worker_id FROM procrastinate_jobs "
        "WHERE queue_name != 'maintenance' ORDER BY id"
    )
    with read_scope(get_engine(url)) as session:
        return [tuple(row) for row in session.execute(text(query)).all()]


def all_done(url: str, files: int) -> bool:
    return jobs(url).get("succeeded", 0) == files and not _relink_pending(url)


def _relink_pending(url: str) -> bool:
    with read_scope(get_engine(url)) as session:
        query = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'links' AND status IN ('todo', 'doing')"  # noqa: E501
        return bool(session.execute(text(query)).scalar_one())


ORPHANS = (
    "SELECT (SELECT count(*) FROM clipfield WHERE clip_id NOT IN (SELECT id FROM clip))"
    " + (SELECT count(*) FROM derivative WHERE clip_id NOT IN (SELECT id FROM clip))"
)


def assert_catalogue_complete(url: str, files: int) -> None:
    """Each file once, nothing orphaned, one ingest audit event per clip, chain intact."""
    with read_scope(get_engine(url)) as session:
        one = session.execute(text("SELECT count(*), count(DISTINCT sha256) FROM clip")).one()
        orphans = session.execute(text(ORPHANS)).scalar_one()
        events = session.execute(
            text("SELECT count(DISTINCT object_ids) FROM auditevent WHERE action = 'ingest'")
        ).scalar_one()
        links = session.execute(text("SELECT count(*) FROM cliplink")).scalar_one()
    assert tuple(one) == (files, files)
    assert orphans == 0
    assert events == files
    assert links > 0
    verified = bwv(url, "audit", "verify")
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout


@pytest.fixture
def queue_url(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    import_sample_records(postgres_url)
    LAST_URL[:] = [postgres_url]
    yield postgres_url


def test_two_workers_catalogue_every_clip_once_and_link_them(
    queue_url: str, tmp_path: Path
) -> None:
    media = clips_folder(tmp_path)
    files = len(list(media.iterdir()))
    queued = bwv(queue_url, "ingest", "--queue", "--no-transcribe", media)
    assert queued.returncode == 0 and f"Queued {files}," in queued.stdout, queued.stderr
    again = bwv(queue_url, "ingest", "--queue", "--no-transcribe", media)
    assert f"Queued 0, already pending {files}," in again.stdout
    workers = [start_worker(queue_url, tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        report = _report_while_ingesting(queue_url, files)
        wait_for(lambda: all_done(queue_url, files))
    finally:
        for worker in workers:
            stop(worker)
    assert_catalogue_complete(queue_url, files)
    for n in (1, 2):  # the model is loaded before the first job is taken, not inside it
        log = (tmp_path / f"w{n}.log").read_text()
        assert log.index("model loaded in") < log.index("worker started"), log
    assert report["summary"]["incidents"] == len(report["incidents"])
    status = json.loads(bwv(queue_url, "queue", "status", "--json").stdout)
    ingest = next(row for row in status if row["queue"] == "ingest")
    assert (ingest["pending"], ingest["running"], ingest["done"]) == (0, 0, files)
    done = bwv(queue_url, "ingest", "--queue", "--no-transcribe", media)
    assert f"Queued 0, already pending 0, already catalogued {files}," in done.stdout


def _report_while_ingesting(url: str, files: int) -> dict:  # type: ignore[type-arg]
    wait_for(lambda: 0 < jobs(url).get("succeeded", 0) < files)
    result = bwv(url, "report", "--format", "json")
    assert result.returncode in (0, 1), result.stderr  # 1: some incident fails the policy
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_killed_worker_s_job_runs_again_after_stall_detection(
    queue_url: str, tmp_path: Path
) -> None:
    media = clips_folder(tmp_path, copies=1)
    files = len(list(media.iterdir()))
    assert bwv(queue_url, "ingest", "--queue", "--no-transcribe", media).returncode == 0
    doomed = start_worker(queue_url, tmp_path / "doomed.log")
    try:
        wait_for(lambda: jobs(queue_url).get("doing", 0) > 0)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)  # the machine is lost mid-file
        doomed.wait()
    # Left "doing" by the dead worker: the file in its process, and possibly one more it
    # had fetched to wait for a process (a worker has one slot beyond its processes).
    assert jobs(queue_url).get("doing", 0) >= 1
    survivor = start_worker(queue_url, tmp_path / "survivor.log")
    try:
        wait_for(lambda: all_done(queue_url, files))
    finally:
        stop(survivor)
    assert_catalogue_complete(queue_url, files)


def test_workers_reconnect_after_the_database_restarts(
    queue_url: str, tmp_path: Path, postgres
) -> None:  # type: ignore[no-untyped-def]
    media = clips_folder(tmp_path)
    files = len(list(media.iterdir()))
    assert bwv(queue_url, "ingest", "--queue", "--no-transcribe", media).returncode == 0
    workers = [start_worker(queue_url, tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        wait_for(lambda: jobs(queue_url).get("succeeded", 0) > 0)
        get_engine(queue_url).dispose()
        postgres.restart()
        wait_for(lambda: all_done(queue_url, files))
    finally:
        for worker in workers:
            stop(worker)
    assert_catalogue_complete(queue_url, files)


def test_a_path_missing_on_the_worker_s_machine_is_recorded_failed(
    queue_url: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    clip = media / READABLE[0]
    shutil.copy(SAMPLES / READABLE[0], clip)
    assert bwv(queue_url, "ingest", "--queue", "--no-transcribe", media).returncode == 0
    clip.unlink()  # the mount is not there on the worker's machine
    worker = start_worker(queue_url, tmp_path / "w.log")
    try:
        wait_for(lambda: all_done(queue_url, 1))
    finally:
        stop(worker)
    shown = json.loads(bwv(queue_url, "clips", "--failed", "--json").stdout)
    assert [c["failure_reason"] for c in shown] == [f"file not found on {socket.gethostname()}"]


def test_search_on_postgres_finds_and_ranks_as_fts5(
    catalogue: dict[str, object], postgres_url: str
) -> None:
    """The sample catalogue's transcripts, copied row for row into PostgreSQL: every
    query finds the same segments, in the same order, on both."""
    sqlite_db = str(catalogue["db"])
    _copy_transcripts(get_engine(f"sqlite:///{sqlite_db}"), get_engine(postgres_url))
    queries = [
        "police",
        "are you",
        "you",
        "I",
        "is",
        "and",
        "SCHOOL",
        "hurt",
        "don't",
        "the",
        "!!!",
    ]
    compared = 0
    for query in queries:
        on_sqlite = _hits(sqlite_db, query)
        on_postgres = _hits(postgres_url, query)
        assert on_postgres == on_sqlite, query
        compared += len(on_sqlite)
    assert compared > 0


def _hits(db: str, query: str) -> list[tuple[object, ...]]:
    result = CliRunner().invoke(main, ["--db", db, "search", query, "--json"])
    assert result.exit_code == 0, result.output
    return [(h["file_name"], h["start_s"]) for h in json.loads(result.output)]


def _copy_transcripts(source, target) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from bwv.core.models import Clip, TranscriptSegment

    with read_scope(source) as reading, session_scope(target) as writing:
        for model in (Clip, TranscriptSegment):
            for row in reading.exec(select(model)).all():
                writing.add(model.model_validate(row.model_dump()))
            writing.flush()


def test_a_failed_job_shows_in_status_and_retry_puts_it_back(
    queue_url: str, tmp_path: Path
) -> None:
    """A job that fails for good (here: arguments no bwv would write) is counted failed,
    and `bwv queue retry --failed` re-enqueues it."""
    from bwv.services.queue import make_app

    app = make_app(get_engine(queue_url))
    with app.open():
        app.tasks["bwv.ingest_file"].defer(path=str(tmp_path / "x.mp4"), options={}, actor="t")
    worker = start_worker(queue_url, tmp_path / "w.log")
    try:
        wait_for(lambda: jobs(queue_url).get("failed", 0) == 1)
    finally:
        stop(worker)
    status = json.loads(bwv(queue_url, "queue", "status", "--json").stdout)
    assert next(row for row in status if row["queue"] == "ingest")["failed"] == 1
    retried = bwv(queue_url, "queue", "retry", "--failed")
    assert retried.returncode == 0 and retried.stdout.strip() == "Re-enqueued 1 failed job(s)"
    assert jobs(queue_url) == {"todo": 1}
