"""Several `bwv ingest` processes and an import on one SQLite catalogue at the same time.

An evidence unit docks many cameras at once and an administrator may import rosters
meanwhile. Every process must finish, counts must be exact (a recording seen by two
processes is catalogued once), and "database is locked" must never reach anyone.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from itertools import cycle
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_media"
SOURCES = (
    "VID_0042.mp4",
    "X60390007_20240116_072330.mp4",
    "X60390008_20240116_093000.mp4",
    "X60390011_20240412_090000.mp4",
    "axis/O105_B8A44F1A2B3C_20240702T083000Z/20240702T083005Z_0001.mp4",
)
BWV = [sys.executable, "-c", "from bwv.cli import main; main()"]

# Slow: several real bwv processes at once.
pytestmark = pytest.mark.slow


def make_batches(root: Path) -> tuple[list[Path], set[str]]:
    """Three folders: 30 distinct recordings, the third also holding copies of the first's."""
    variants: list[tuple[str, bytes]] = []
    for name in SOURCES:
        data = (SAMPLES / name).read_bytes()
        stem = Path(name).name
        # Trailing bytes after the last box leave the MP4 playable but give a new hash.
        variants += [(f"{tag}_{stem}", data + tag.encode()) for tag in "abcdef"]
    folders = [root / "a", root / "b", root / "c"]
    for index, (name, data) in enumerate(variants):
        folder = folders[index % 3]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    for copy in sorted(folders[0].iterdir())[:3]:
        shutil.copy(copy, folders[2] / f"dup_{copy.name}")
    return folders, {hashlib.sha256(d).hexdigest() for _, d in variants}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BWV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out + err


def ingest_started(db: Path, deadline_s: float = 120.0) -> None:
    """Waits until the first clip is committed, so the imports really overlap the ingests."""
    ends = time.monotonic() + deadline_s
    while time.monotonic() < ends:
        if count(db, "clip") > 0:
            return
        time.sleep(0.2)
    raise AssertionError("no ingest committed a clip in time")


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def csv_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def test_parallel_ingests_and_imports_are_exact(tmp_path: Path) -> None:
    folders, distinct = make_batches(tmp_path / "media")
    db = str(tmp_path / "bwv.db")
    CliRunner().invoke(main, ["--db", db, "audit", "verify"])  # creates the catalogue
    options = ("ingest", "--no-transcribe", "--workers", "1")
    ingests = [
        start("--db", db, "--actor", f"dock{i}", *options, str(folder))
        for i, folder in enumerate(folders)
    ]
    ingest_started(tmp_path / "bwv.db")
    imports: list[tuple[int, str]] = []
    kinds = cycle(("officers", "assignments"))
    while len(imports) < 3 or any(p.poll() is None for p in ingests):
        kind = next(kinds)
        command = ("--db", db, "--actor", "admin", "import", kind, str(SAMPLES / f"{kind}.csv"))
        imports.append(finish(start(*command)))
    results = [finish(p) for p in ingests] + imports
    for code, output in results:
        assert code == 0, output
        assert "locked" not in output.lower(), output
        assert "Traceback" not in output, output

    catalogue = tmp_path / "bwv.db"
    assert count(catalogue, "clip") == len(distinct) == 30
    assert count(catalogue, "officer") == csv_rows(SAMPLES / "officers.csv")
    assert count(catalogue, "assignment") == csv_rows(SAMPLES / "assignments.csv")
    with sqlite3.connect(catalogue) as connection:
        shas = {row[0] for row in connection.execute("SELECT sha256 FROM clip")}
        actions = [a for (a,) in connection.execute("SELECT action FROM auditevent ORDER BY id")]
    assert shas == distinct and actions.count("ingest") == 30
    first, last = actions.index("ingest"), len(actions) - actions[::-1].index("ingest")
    assert "import" in actions[first:last], "an import should land between ingest commits"
    verify = CliRunner().invoke(main, ["--db", db, "audit", "verify"])
    assert verify.exit_code == 0, verify.output
