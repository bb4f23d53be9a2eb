"""Benchmark: the ingest queue on PostgreSQL, 1 and 2 workers, beside today's SQLite ingest.

The same footage (copies of the sample clips, each with a different tail so each is a
distinct clip) is catalogued three ways, each into a fresh catalogue:

* baseline: `bwv ingest --workers 2` into SQLite (today's multiprocess ingest);
* `bwv ingest --queue` into PostgreSQL, then 1 `bwv worker --threads 1` process;
* the same with 2 such workers (as on two one-core machines, here on one two-core one).

Throughput is files per second over the workers' makespan (first job started to last
job done, from the queue's own event times), so worker start-up and model loading are
not counted. The queue's own overhead per file is measured without the model
(`--no-transcribe`, so the file's work is small and the overhead visible): one worker's
time per file in steady state (first job done to last job done) minus the in-process
pipeline and writer's time per file for the same files into PostgreSQL (`ingest_paths`
in one process, warm: the best of two runs).

Needs a PostgreSQL server where the benchmark may create and drop databases:

    .venv/bin/python bench/scale.py --postgres postgresql://bwv@127.0.0.1:5432/postgres
    .venv/bin/python bench/scale.py --postgres URL --copies 6 --no-transcribe
    .venv/bin/python bench/scale.py --postgres URL --footage /tmp/bwv-bench-footage-30

(`--footage`: the 5-minute files `bench/ingest.py` builds, speech a third of the time.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
SAMPLES = ROOT / "sample_media"
READABLE = (
    "X60390007_20240116_072330.mp4",
    "X60390008_20240116_093000.mp4",
    "X60390011_20240412_090000.mp4",
    "VID_0042.mp4",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="URL of a database on the server")
    parser.add_argument("--copies", type=int, default=12, help="copies of each sample clip")
    parser.add_argument("--no-transcribe", action="store_true", help="throughput without model")
    parser.add_argument(
        "--footage", type=Path, help="a folder of footage to use instead (bench/ingest.py's)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bwv-bench-scale-"))
    try:
        run(args.postgres, folder, args.copies, not args.no_transcribe, args.footage)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(
    server: str, folder: Path, copies: int, transcribe: bool, given: Path | None = None
) -> None:
    media = given or footage(folder, copies)
    files = len(list(media.iterdir()))
    model = [] if transcribe else ["--no-transcribe"]
    print(f"{files} files ({'with' if transcribe else 'without'} transcription); {load()}")
    sqlite_s = sqlite_ingest(folder / "bench.db", media, model)
    one = queued(server, media, model, workers=1)
    two = queued(server, media, model, workers=2)
    print()
    print(f"{'way':<44} {'files/s':>8} {'vs 1 worker':>12}")
    print(f"{'SQLite, bwv ingest --workers 2 (baseline)':<44} {files / sqlite_s:>8.2f} {'-':>12}")
    print(f"{'PostgreSQL queue, 1 worker':<44} {files / one:>8.2f} {1.0:>11.2f}x")
    print(f"{'PostgreSQL queue, 2 workers':<44} {files / two:>8.2f} {one / two:>11.2f}x")
    print(f"2 workers vs 1: {one / two:.2f}x (target >= 1.8x)")
    overhead = queue_overhead(server, media)
    print(f"queue overhead per file: {overhead * 1000:.0f} ms (target < 50 ms)")
    print(load())


def footage(folder: Path, copies: int) -> Path:
    media = folder / "media"
    media.mkdir()
    for name in READABLE:
        for n in range(copies):
            target = media / f"{Path(name).stem}_{n}{Path(name).suffix}"
            target.write_bytes((SAMPLES / name).read_bytes() + b"\0" * n)
    return media


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def bwv(url: str, *args: object, **popen: object) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), BWV_DATABASE_URL=url, BWV_ACTOR="bench")
    command = [sys.executable, "-c", "from bwv.cli import run; run()", *map(str, args)]
    return subprocess.Popen(command, env=env, **popen)  # type: ignore[call-overload]


def sqlite_ingest(database: Path, media: Path, model: list[str]) -> float:
    began = time.perf_counter()
    bwv(str(database), "ingest", "--workers", "2", *model, media, stdout=subprocess.DEVNULL).wait()
    seconds = time.perf_counter() - began
    print(f"  SQLite ingest --workers 2: {seconds:.1f} s (with start-up)")
    return seconds


def queued(server: str, media: Path, model: list[str], *, workers: int) -> float:
    """Makespan in seconds of `workers` worker processes ingesting the queued folder."""
    url = fresh_database(server)
    try:
        bwv(url, "ingest", "--queue", *model, media, stdout=subprocess.DEVNULL).wait()
        files = len(list(media.iterdir()))
        one_core = ["worker", "--threads", "1"]  # the workers stand for one-core machines
        cpu_before = _children_cpu()
        procs = [
            bwv(url, *one_core, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(workers)
        ]
        try:
            while succeeded(url) < files:
                time.sleep(0.5)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
        seconds, cpu = makespan(url), _children_cpu() - cpu_before
        print(
            f"  queue, {workers} worker(s): makespan {seconds:.1f} s; the workers' CPU "
            f"{cpu / files:.2f} s per file (with start-up and model loading)"
        )
        if workers == 2:
            print_rows(url)
        return seconds
    finally:
        drop_database(server, url)


def _children_cpu() -> float:
    """CPU seconds of this process's finished children and theirs (a stopped worker
    waits for its processes, so their time is counted when it is)."""
    times = os.times()
    return times.children_user + times.children_system


def queue_overhead(server: str, media: Path) -> float:
    """Seconds per file the queue adds to the pipeline and writer (no model), in steady
    state: the in-process ingest is run twice and the second (warm) run timed; through
    the queue, the time from the first job done to the last, per further file."""
    direct = min(_in_process(server, media) for _ in range(2))
    url = fresh_database(server)
    try:
        bwv(url, "ingest", "--queue", "--no-transcribe", media, stdout=subprocess.DEVNULL).wait()
        files = len(list(media.iterdir()))
        worker = bwv(
            url, "worker", "--threads", "1", stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            while succeeded(url) < files:
                time.sleep(0.5)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait()
        steady = _sql(url, STEADY)[0][0]
    finally:
        drop_database(server, url)
    per_file = float(steady) / (files - 1)  # type: ignore[arg-type]
    print(
        f"  no model, per file: in-process {direct * 1000:.0f} ms, queue {per_file * 1000:.0f} ms"
    )
    return per_file - direct


STEADY = (
    "SELECT extract(epoch FROM max(e.at) - min(e.at)) FROM procrastinate_events e "
    "JOIN procrastinate_jobs j ON j.id = e.job_id "
    "WHERE j.queue_name = 'ingest' AND e.type = 'succeeded'"
)


def _in_process(server: str, media: Path) -> float:
    """Seconds per file of today's pipeline and writer in this process, into PostgreSQL."""
    from bwv.core.db import get_engine
    from ingest.worker import IngestOptions, ingest_paths

    url = fresh_database(server)
    try:
        engine = get_engine(url)
        options = IngestOptions(workers=1, transcribe=False)
        summary = ingest_paths([media], engine=engine, actor="bench", options=options)
        engine.dispose()
        return summary.seconds / summary.files
    finally:
        drop_database(server, url)


def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        connection.autocommit = True
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


_counter = iter(range(1, 1_000_000))


def fresh_database(server: str) -> str:
    name = f"bwv_bench_{os.getpid()}_{next(_counter)}"
    _sql(server, f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    bwv(url, "queue", "status", stdout=subprocess.DEVNULL).wait()  # migrates it
    return url


def drop_database(server: str, url: str) -> None:
    _sql(server, f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


TABLES = (
    "clip", "clipfield", "speechregion", "transcriptsegment", "derivative", "cliplink",
    "auditevent", "procrastinate_jobs", "procrastinate_events",
)  # fmt: skip


def print_rows(url: str) -> None:
    """Rows per clip and per footage hour, and mean row bytes, of what ingest wrote:
    the per-file and per-hour figures docs/scale.md scales to a force."""
    clips, footage = _sql(url, "SELECT count(*), coalesce(sum(duration_s), 0) FROM clip")[0]
    hours = float(footage) / 3600  # type: ignore[arg-type]
    print(f"  catalogue: {clips} clips, {hours * 60:.1f} min of footage")
    print(f"  {'table':<22} {'rows':>7} {'per clip':>9} {'per hour':>9} {'row bytes':>10}")
    for table in TABLES:
        rows, size = _sql(
            url, f"SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0) FROM {table} t"
        )[0]
        count = int(rows)  # type: ignore[call-overload]
        print(f"  {table:<22} {count:>7} {count / int(clips):>9.2f} "  # type: ignore[call-overload]
              f"{count / max(hours, 1e-9):>9.0f} {float(size):>10.0f}")  # type: ignore[arg-type]  # fmt: skip


def succeeded(url: str) -> int:
    query = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'ingest' AND status = 'succeeded'"  # noqa: E501
    return int(_sql(url, query)[0][0])  # type: ignore[call-overload]


def makespan(url: str) -> float:
    query = (
        "SELECT extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded') "
        "- min(e.at) FILTER (WHERE e.type = 'started')) FROM procrastinate_events e "
        "JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.queue_name = 'ingest'"
    )
    return float(_sql(url, query)[0][0])  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
