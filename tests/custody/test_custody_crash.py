"""Crash safety: `bwv ingest` killed with SIGKILL at random points, then run to completion.

A power cut or an OOM kill can stop ingest anywhere: inside a transaction, between the
store copy and the catalogue commit, mid-way through writing a store file. After any
number of such kills a plain re-run must leave every clip exactly once, no orphan rows,
the originals unchanged, the store without temporary files and the audit chain intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bwv.cli import main
from bwv.core.store import temp_files

ROOT = Path(__file__).resolve().parents[2]
MEDIA = {".mp4", ".mov", ".mkv"}
CHILD_TABLES = ("clipfield", "speechregion", "transcriptsegment", "derivative", "cliplink")
MID_BATCH_KILLS = 3
BWV = [sys.executable, "-c", "from bwv.cli import main; main()"]

# Slow: real processes killed mid-ingest.
pytestmark = pytest.mark.slow


def media_copy(target: Path) -> dict[Path, str]:
    """The sample recordings (and sidecars) copied, plus variants, with each file's SHA-256.

    The variants (bytes appended after the last MP4 box: still playable, another hash)
    make the batch long enough for every seeded kill to land while ingest is working.
    """
    shutil.copytree(ROOT / "sample_media", target, ignore=shutil.ignore_patterns("*.py", "*.csv"))
    for source in sorted(target.glob("X*.mp4")):
        for tag in "abc":
            (target / f"{tag}_{source.name}").write_bytes(source.read_bytes() + tag.encode())
    files = [p for p in target.rglob("*") if p.suffix.lower() in MEDIA]
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def ingest_command(db: Path, media: Path, store: Path) -> list[str]:
    options = ["--no-transcribe", "--workers", "2", "--store", str(store)]
    return [*BWV, "--db", str(db), "ingest", *options, str(media)]


def start(command: list[str]) -> subprocess.Popen[bytes]:
    """Ingest in its own process group, so one SIGKILL takes its workers down with it."""
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def kill(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILLs the whole group; False when ingest had already finished."""
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return True


def kill_after(command: list[str], delay_s: float) -> bool:
    process = start(command)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=delay_s)
    return kill(process)


def kill_mid_batch(command: list[str], db: Path, rng: random.Random) -> bool:
    """Kills at a random moment once this run has committed at least one more clip."""
    before = clip_count(db)
    process = start(command)
    ends = time.monotonic() + 120
    while process.poll() is None and clip_count(db) <= before and time.monotonic() < ends:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.3))
    return kill(process)


def clip_count(db: Path) -> int:
    try:
        return int(query(db, "SELECT COUNT(*) FROM clip")[0][0]) if db.exists() else 0
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    hashes = media_copy(tmp_path / "media")
    db, store = tmp_path / "bwv.db", tmp_path / "store"
    command = ingest_command(db, tmp_path / "media", store)
    rng = random.Random(20240116)
    killed = [kill_after(command, rng.uniform(0.2, 2.0))]  # while starting and hashing
    progress = []
    for _ in range(MID_BATCH_KILLS):
        killed.append(kill_mid_batch(command, db, rng))
        progress.append(clip_count(db))
    final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode in (0, 1), final.stderr
    assert "Traceback" not in final.stderr
    assert killed[0] and sum(killed) >= 3, "the kills should land while ingest is running"
    assert progress[0] > 0, progress

    rows = query(db, "SELECT sha256, status FROM clip")
    assert sorted(sha for sha, _ in rows) == sorted(set(hashes.values()))
    for table in CHILD_TABLES:
        orphans = f"SELECT COUNT(*) FROM {table} WHERE clip_id NOT IN (SELECT id FROM clip)"
        assert query(db, orphans) == [(0,)], table
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in hashes} == hashes
    ingest_events = query(db, "SELECT object_ids FROM auditevent WHERE action = 'ingest'")
    assert sorted(o for (o,) in ingest_events) == sorted(
        f"clip:{i}" for (i,) in query(db, "SELECT id FROM clip")
    )
    stored = query(
        db,
        "SELECT c.sha256, d.path FROM derivative d JOIN clip c ON c.id = d.clip_id "
        "WHERE d.kind = 'store_copy'",
    )
    # Every original is kept in the store, the unreadable ones too.
    assert {sha for sha, _ in stored} == {sha for sha, _ in rows}
    assert all(hashlib.sha256(Path(p).read_bytes()).hexdigest() == sha for sha, p in stored)
    assert temp_files(store) == []
    result = CliRunner().invoke(main, ["--db", str(db), "audit", "verify"])
    assert result.exit_code == 0, result.output

    before = query(db, "SELECT id, sha256, status FROM clip ORDER BY id")
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert query(db, "SELECT id, sha256, status FROM clip ORDER BY id") == before
