"""`bwv verify` holds each clip against its ingest audit event and counts every problem.

The clip row is ordinary, editable data; the ingest event that recorded the hash is
chained. A recording swapped together with its row (and its store-copy row deleted)
must not pass, and a tampered store copy must show in the summary, not only in an
indented line above it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ingest_with_store

from bwv.cli import main
from bwv.core.store import sha256_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ("X60390008_20240116_093000.mp4", "X60390009_20240220_101500.mkv")


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "custodian", *args])
    return result.exit_code, result.output


def sql(db: Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(statement, params).fetchall()


@pytest.fixture
def catalogue(tmp_path: Path) -> dict[str, Path]:
    """Two real clips ingested (no transcription) with an evidence store."""
    return ingest_with_store(tmp_path, SAMPLES)


def swap_recording(catalogue: dict[str, Path]) -> tuple[Path, str, str]:
    """Replaces clip 1's bytes, re-hashes its row and drops its store-copy row."""
    original = catalogue["media"] / SAMPLES[0]
    old = sha256_file(original)
    original.write_bytes(original.read_bytes() + b"a different recording")
    new = sha256_file(original)
    db = catalogue["db"]
    sql(db, "UPDATE clip SET sha256 = ? WHERE id = 1", new)
    sql(db, "DELETE FROM derivative WHERE clip_id = 1 AND kind = 'store_copy'")
    return original, old, new


def head_hash(db: Path) -> str:
    return str(sql(db, "SELECT hash FROM auditevent ORDER BY id DESC LIMIT 1")[0][0])


def test_swapped_recording_with_rewritten_row_is_catalogue_altered(
    catalogue: dict[str, Path],
) -> None:
    db = catalogue["db"]
    anchor = head_hash(db)
    _original, old, new = swap_recording(catalogue)
    # The chain itself was not touched, so it still checks out against the anchor ...
    assert run(db, "audit", "verify", "--anchor", anchor)[0] == 0
    # ... but the ingest event still holds the old hash, and verify must say so.
    code, output = run(db, "verify", "--all")
    assert code == 1
    assert output.splitlines() == [
        f"catalogue_altered      1  {SAMPLES[0]}",
        f"{'':<18}catalogued SHA-256 {new} is not the one recorded at ingest, {old}: "
        "the catalogue was changed",
        f"ok              2  {SAMPLES[1]}",
        "2 clips verified: 1 ok, 1 catalogue altered",
    ]
    outcome, details = sql(db, "SELECT outcome, details FROM auditevent ORDER BY id DESC")[0]
    assert outcome == "mismatch"
    assert json.loads(str(details))["catalogue_altered"] == 1


def test_swapped_recording_json_counts_and_status(catalogue: dict[str, Path]) -> None:
    _original, old, _new = swap_recording(catalogue)
    code, output = run(catalogue["db"], "verify", "1", "--json")
    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    assert report["counts"]["catalogue_altered"] == 1 and report["counts"]["ok"] == 0
    assert report["clips"][0]["status"] == "catalogue_altered"
    assert report["clips"][0]["recorded_sha256"] == old


def test_clip_without_its_ingest_event_is_catalogue_altered(catalogue: dict[str, Path]) -> None:
    db = catalogue["db"]
    sql(db, "DELETE FROM auditevent WHERE action = 'ingest' AND object_ids = 'clip:2'")
    code, output = run(db, "verify", "2")
    assert code == 1
    assert "no ingest audit event records it" in output
    assert output.endswith("1 clips verified: 1 catalogue altered\n")


def test_tampered_store_copy_is_counted_in_the_summary(catalogue: dict[str, Path]) -> None:
    (copy,) = [
        Path(str(p))
        for (p,) in sql(catalogue["db"], "SELECT path FROM derivative WHERE clip_id = 2")
        if p
    ]
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes()[:-1])
    code, output = run(catalogue["db"], "verify", "--all")
    assert code == 1
    assert output.endswith("2 clips verified: 1 ok, 1 store copy modified\n")
    code, output = run(catalogue["db"], "verify", "--all", "--json")
    counts = json.loads(output)["counts"]
    assert code == 1
    assert (counts["ok"], counts["store_modified"], counts["modified"]) == (1, 1, 0)


def test_every_problem_is_counted_once(catalogue: dict[str, Path]) -> None:
    """A clip whose original and store copy are both gone counts as two problems."""
    (copy,) = [
        Path(str(p))
        for (p,) in sql(catalogue["db"], "SELECT path FROM derivative WHERE clip_id = 1")
        if p
    ]
    copy.unlink()
    (catalogue["media"] / SAMPLES[0]).unlink()
    code, output = run(catalogue["db"], "verify", "--all")
    assert code == 1
    assert output.endswith("2 clips verified: 1 ok, 1 missing, 1 store copy missing\n")
