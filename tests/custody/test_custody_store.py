"""The evidence store: verified, read-only, content-addressed copies; never a partial file."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bwv.core.errors import BwvError
from bwv.core.store import (
    READ_ONLY,
    StoreError,
    sha256_file,
    store_original,
    store_path,
    sweep_temp_files,
    temp_files,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_media" / "X60390007_20240116_072330.mp4"


@pytest.fixture
def original(tmp_path: Path) -> Path:
    copy = tmp_path / "in" / "Clip One.MP4"
    copy.parent.mkdir()
    copy.write_bytes(SAMPLE.read_bytes())
    return copy


def test_store_copies_into_hash_folders_read_only(original: Path, tmp_path: Path) -> None:
    digest = sha256_file(original)
    stored = store_original(original, digest, tmp_path / "store")
    assert stored == tmp_path / "store" / digest[:2] / digest[2:4] / f"{digest}.mp4"
    assert stat.S_IMODE(stored.stat().st_mode) == READ_ONLY
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert temp_files(tmp_path / "store") == []


def test_store_never_touches_the_original(original: Path, tmp_path: Path) -> None:
    before = (original.stat().st_mtime_ns, stat.S_IMODE(original.stat().st_mode))
    digest = sha256_file(original)
    store_original(original, digest, tmp_path / "store")
    assert sha256_file(original) == digest
    assert (original.stat().st_mtime_ns, stat.S_IMODE(original.stat().st_mode)) == before


def test_storing_twice_returns_the_same_verified_copy(original: Path, tmp_path: Path) -> None:
    digest = sha256_file(original)
    first = store_original(original, digest, tmp_path / "store")
    inode = first.stat().st_ino
    second = store_original(original, digest, tmp_path / "store")
    assert second == first and second.stat().st_ino == inode
    assert len(list((tmp_path / "store").rglob("*.mp4"))) == 1


def test_wrong_hash_leaves_nothing_under_the_final_name(original: Path, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(StoreError, match="changed"):
        store_original(original, wrong, tmp_path / "store")
    assert not store_path(wrong, ".mp4", tmp_path / "store").exists()
    assert temp_files(tmp_path / "store") == []


def test_an_altered_store_copy_is_reported_and_left_for_inspection(
    original: Path, tmp_path: Path
) -> None:
    digest = sha256_file(original)
    stored = store_original(original, digest, tmp_path / "store")
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="altered after it was stored"):
        store_original(original, digest, tmp_path / "store")
    assert stored.read_bytes() == b"tampered"


def test_store_errors_are_domain_errors_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp4"
    with pytest.raises(BwvError, match=r"cannot store .*gone\.mp4.*No such file"):
        store_original(missing, "a" * 64, tmp_path / "store")
    with pytest.raises(BwvError, match="not a SHA-256"):
        store_original(missing, "../../etc/passwd", tmp_path / "store")


def test_odd_extensions_do_not_reach_the_store_name(tmp_path: Path) -> None:
    digest = "ab" * 32
    assert store_path(digest, ".MOV", tmp_path).name == f"{digest}.mov"
    assert store_path(digest, "", tmp_path).name == digest
    assert store_path(digest, ".x/../../y", tmp_path).name == digest


def test_temp_files_of_dead_writers_are_swept_live_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "ab" / "cd"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stale = folder / f".{'ab' * 32}.mp4.{dead.stdout.strip()}.00ff00ff.tmp"
        busy = folder / f".{'ab' * 32}.mp4.{live.pid}.11ff11ff.tmp"
        stale.write_bytes(b"partial")
        busy.write_bytes(b"partial")
        assert sweep_temp_files(folder) == 1
        assert not stale.exists() and busy.exists()
    finally:
        live.kill()
        live.wait()


def test_store_folder_that_is_a_file_fails_cleanly(original: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot store"):
        store_original(original, sha256_file(original), blocker)
    assert sorted(os.listdir(tmp_path)) == ["in", "store"]
