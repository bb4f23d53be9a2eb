"""The evidence store and retries: absolute store paths, failed originals kept, temporary
failures never recorded as permanent ones, and `--retry-failed` keeping the clip's id."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bwv.cli import main
from bwv.core.store import sha256_file, store_path

ROOT = Path(__file__).resolve().parents[2]
DAMAGED = ROOT / "sample_media" / "X60390012_20240518_140000.mp4"
GOOD = ROOT / "sample_media" / "X60390009_20240220_101500.mkv"


def bwv(db: Path, *args: object) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *map(str, args)])


def ingest(db: Path, *args: object) -> Result:
    return bwv(db, "ingest", "--no-transcribe", "--workers", "1", *args)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return list(connection.execute(sql))


def test_a_relative_store_is_recorded_absolute_and_verifies_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(GOOD, tmp_path / "good.mkv")
    db = tmp_path / "c.db"
    monkeypatch.chdir(tmp_path / "a")
    assert ingest(db, "--store", "store", tmp_path / "good.mkv").exit_code == 0
    [(path,)] = rows(db, "SELECT path FROM derivative WHERE kind = 'store_copy'")
    assert path == str(store_path(sha256_file(GOOD), ".mkv", tmp_path / "a" / "store"))
    monkeypatch.chdir(tmp_path / "b")
    result = bwv(db, "verify", "--all")
    assert result.exit_code == 0, result.output
    assert "missing" not in result.output


def test_a_failed_original_is_copied_into_the_store_too(tmp_path: Path) -> None:
    shutil.copy(DAMAGED, tmp_path / "damaged.mp4")
    db, store = tmp_path / "c.db", tmp_path / "store"
    result = ingest(db, "--store", store, tmp_path / "damaged.mp4")
    assert result.exit_code == 1 and "failed 1" in result.output
    digest = sha256_file(DAMAGED)
    copy = store_path(digest, ".mp4", store)
    assert sha256_file(copy) == digest
    assert rows(
        db, "SELECT c.status, d.path FROM clip c JOIN derivative d ON d.clip_id = c.id"
    ) == [("failed", str(copy))]
    assert bwv(db, "verify", "--all").exit_code == 0


def test_a_store_that_cannot_be_written_is_retried_not_a_permanent_failure(
    tmp_path: Path,
) -> None:
    shutil.copy(GOOD, tmp_path / "good.mkv")
    db, store = tmp_path / "c.db", tmp_path / "store"
    blocker = store / sha256_file(GOOD)[:2]
    blocker.parent.mkdir()
    blocker.write_text("a file where the store needs a folder")
    first = ingest(db, "--store", store, tmp_path / "good.mkv")
    assert first.exit_code == 1, first.output
    assert first.output.startswith("Ingested 0, skipped 0, failed 0, not finished 1 ")
    assert f"not finished, retried on the next run: {tmp_path / 'good.mkv'}: cannot store" in (
        first.output
    )
    assert rows(db, "SELECT count(*) FROM clip") == [(0,)]
    blocker.unlink()
    second = ingest(db, "--store", store, tmp_path / "good.mkv")
    assert second.exit_code == 0, second.output
    assert second.output.startswith("Ingested 1, skipped 0, failed 0 ")
    assert sha256_file(store_path(sha256_file(GOOD), ".mkv", store)) == sha256_file(GOOD)


def test_retry_failed_keeps_the_clip_id_and_the_audit_shows_the_retry(tmp_path: Path) -> None:
    media = tmp_path / "m"
    media.mkdir()
    odd = Path(os.fsdecode(bytes(media) + b"/caf\xe9.mkv"))  # Latin-1 name: not UTF-8
    shutil.copy(GOOD, odd)
    db = tmp_path / "c.db"
    first = ingest(db, media)
    assert first.exit_code == 1, first.output
    assert f"failed: {media}/caf\\xe9.mkv: file name is not valid UTF-8" in first.output
    assert ingest(db, media).output.startswith("Ingested 0, skipped 1, failed 0 ")
    odd.rename(media / "cafe.mkv")
    retried = ingest(db, "--retry-failed", media)
    assert retried.exit_code == 0, retried.output
    assert retried.output.startswith("Ingested 1, skipped 0, failed 0 ")
    assert rows(db, "SELECT id, status, file_name FROM clip") == [(1, "ingested", "cafe.mkv")]
    events = rows(db, "SELECT outcome, details FROM auditevent WHERE action = 'ingest'")
    assert [outcome for outcome, _ in events] == ["failed", "ok"]
    retry_of = json.loads(str(events[1][1]))["retry_of"]
    assert retry_of["status"] == "failed" and "not valid UTF-8" in retry_of["reason"]
    assert bwv(db, "audit", "verify").exit_code == 0
    assert ingest(db, "--retry-failed", media).output.startswith("Ingested 0, skipped 1, ")
