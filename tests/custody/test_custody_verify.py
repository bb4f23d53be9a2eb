"""`bwv verify`: originals and store copies re-hashed; modified or missing ones exit 1."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ingest_with_store

from bwv.cli import main
from bwv.core.store import sha256_file, temp_files

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ("VID_0042.mp4", "VID_0042.json", "X60390009_20240220_101500.mkv")


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "custodian", *args])
    return result.exit_code, result.output


@pytest.fixture
def catalogue(tmp_path: Path) -> dict[str, Path]:
    """Two real clips ingested with an evidence store."""
    return ingest_with_store(tmp_path, SAMPLES)


def last_event(db: Path) -> tuple[object, ...]:
    with sqlite3.connect(db) as connection:
        query = "SELECT actor, action, object_ids, outcome, details FROM auditevent"
        return connection.execute(f"{query} ORDER BY id DESC LIMIT 1").fetchone()


def store_copies(db: Path) -> list[Path]:
    with sqlite3.connect(db) as connection:
        query = "SELECT path FROM derivative WHERE kind = 'store_copy' ORDER BY clip_id"
        return [Path(row[0]) for row in connection.execute(query)]


def test_all_clips_verify_ok_and_the_check_is_audited(catalogue: dict[str, Path]) -> None:
    code, output = run(catalogue["db"], "verify", "--all")
    assert (code, output) == (
        0,
        "ok              1  VID_0042.mp4\n"
        "ok              2  X60390009_20240220_101500.mkv\n"
        "2 clips verified: 2 ok\n",
    )
    actor, action, objects, outcome, details = last_event(catalogue["db"])
    assert (actor, action, objects, outcome) == ("custodian", "verify", "clip:1,clip:2", "ok")
    assert json.loads(str(details))["ok"] == 2


def test_store_holds_read_only_verified_copies(catalogue: dict[str, Path]) -> None:
    copies = store_copies(catalogue["db"])
    originals = [catalogue["media"] / SAMPLES[0], catalogue["media"] / SAMPLES[2]]
    assert [sha256_file(c) for c in copies] == [sha256_file(o) for o in originals]
    assert all(stat.S_IMODE(c.stat().st_mode) == 0o444 for c in copies)
    assert [c.parent.parent.parent for c in copies] == [catalogue["store"]] * 2
    assert temp_files(catalogue["store"]) == []


def test_modified_original_exits_1(catalogue: dict[str, Path]) -> None:
    original = catalogue["media"] / SAMPLES[0]
    catalogued = sha256_file(original)
    with original.open("ab") as handle:
        handle.write(b"\0")
    code, output = run(catalogue["db"], "verify", "1", "2")
    assert code == 1
    assert output.splitlines() == [
        "modified        1  VID_0042.mp4",
        f"{'':<18}{original}: SHA-256 now {sha256_file(original)}, catalogued {catalogued}",
        "ok              2  X60390009_20240220_101500.mkv",
        "2 clips verified: 1 ok, 1 modified",
    ]
    _, _, _, outcome, details = last_event(catalogue["db"])
    assert outcome == "mismatch"
    assert json.loads(str(details))["problems"] == [
        {"clip_id": 1, "original": "modified", "store": ["ok"]}
    ]


def test_missing_original_exits_1(catalogue: dict[str, Path]) -> None:
    original = catalogue["media"] / SAMPLES[2]
    original.unlink()
    code, output = run(catalogue["db"], "verify", SAMPLES[2])
    assert (code, output) == (
        1,
        f"missing         2  {SAMPLES[2]}\n{'':<18}{original}: no such file\n"
        "1 clips verified: 1 missing\n",
    )


def test_tampered_store_copy_exits_1(catalogue: dict[str, Path]) -> None:
    copy = store_copies(catalogue["db"])[1]
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes()[:-1])
    code, output = run(catalogue["db"], "verify", "--all")
    assert code == 1
    assert f"store copy modified: {copy}: SHA-256 now {sha256_file(copy)}" in output
    assert output.endswith("2 clips verified: 1 ok, 1 store copy modified\n")


def test_verify_by_hash_prefix_and_json(catalogue: dict[str, Path]) -> None:
    digest = sha256_file(catalogue["media"] / SAMPLES[0])
    code, output = run(catalogue["db"], "verify", digest[:12], "--json")
    report = json.loads(output)
    assert code == 0 and report["ok"] is True
    assert report["counts"] == {
        "ok": 1,
        "modified": 0,
        "missing": 0,
        "unreadable": 0,
        "catalogue_altered": 0,
        "store_modified": 0,
        "store_missing": 0,
        "store_unreadable": 0,
    }
    assert report["clips"][0]["original"]["actual_sha256"] == digest
    assert report["clips"][0]["store_copies"][0]["status"] == "ok"


def test_verify_needs_clips_or_all(catalogue: dict[str, Path]) -> None:
    assert run(catalogue["db"], "verify") == (2, "Error: name the clips to verify, or use --all\n")
    code, output = run(catalogue["db"], "verify", "nope")
    assert code == 2
    assert output == "Error: no clip 'nope' in the catalogue (give an id, hash or file name)\n"
    assert run(catalogue["db"], "verify", "1", "--all")[0] == 2


def test_verify_never_changes_the_original(catalogue: dict[str, Path]) -> None:
    original = catalogue["media"] / SAMPLES[0]
    before = (original.stat().st_mtime_ns, original.stat().st_mode, sha256_file(original))
    run(catalogue["db"], "verify", "--all")
    assert (original.stat().st_mtime_ns, original.stat().st_mode, sha256_file(original)) == before
