"""Every path that cannot or must not be read is reported, and the exit code says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "sample_media" / "X60390009_20240220_101500.mkv"
OTHER = ROOT / "sample_media" / "X60390010_20240305_183000.mov"

# Slow: real bwv processes, some as another user.
pytestmark = pytest.mark.slow


def ingest(db: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """The real `bwv ingest` in a child process, with a deadline: a hang fails the test."""
    command = [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(db)]
    command += ["ingest", "--no-transcribe", "--workers", "1", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_a_fifo_named_or_found_is_reported_and_never_opened(tmp_path: Path) -> None:
    media = tmp_path / "m"
    media.mkdir()
    shutil.copy(GOOD, media / "good.mkv")
    os.mkfifo(media / "pipe.mp4")
    os.mkfifo(tmp_path / "named.mp4")
    done = ingest(tmp_path / "c.db", media, tmp_path / "named.mp4")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Ingested 1, skipped 0, failed 0, rejected 2 ")
    assert f"  not ingested: {media / 'pipe.mp4'}: not a regular file (FIFO); not read" in lines
    assert f"  not ingested: {tmp_path / 'named.mp4'}: not a regular file (FIFO); not read" in lines


def test_a_device_named_on_the_command_line_is_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--db", str(tmp_path / "c.db"), "ingest", "--no-transcribe", "/dev/null"]
    )
    assert result.exit_code == 1
    assert "not ingested: /dev/null: not a regular file (character device)" in result.output


def test_a_symlink_out_of_the_folder_is_reported_and_followed_only_on_request(
    tmp_path: Path,
) -> None:
    media, elsewhere = tmp_path / "m", tmp_path / "elsewhere"
    media.mkdir()
    elsewhere.mkdir()
    shutil.copy(GOOD, media / "good.mkv")
    shutil.copy(OTHER, elsewhere / "other.mov")
    (media / "link.mov").symlink_to(elsewhere / "other.mov")
    (media / "inside.mkv").symlink_to(media / "good.mkv")  # inside: the same clip, once
    (media / "folder").symlink_to(elsewhere)
    db = ["--db", str(tmp_path / "c.db"), "ingest", "--no-transcribe", "--workers", "1"]
    result = CliRunner().invoke(main, [*db, str(media)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Ingested 1, skipped 0, failed 0, rejected 2 ")
    for name in ("link.mov", "folder"):
        assert (
            f"not ingested: {media / name}: symbolic link leads outside {media} "
            f"(to {elsewhere / ('other.mov' if name == 'link.mov' else '')}".rstrip("/")
            in result.output
        ), result.output
    followed = CliRunner().invoke(main, [*db, "--follow-symlinks", str(media)])
    assert followed.exit_code == 0, followed.output
    assert followed.output.startswith("Ingested 1, skipped 1, failed 0 ")


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user may write (tests run as root, who can read anything)."""
    folder = Path(tempfile.mkdtemp(prefix="bwv-harden-"))
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


def as_unprivileged(db: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`bwv ingest` as a user without root's power to read every file."""
    if os.geteuid() != 0:
        return ingest(db, *args)
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot make a path unreadable")
    command = ["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={ROOT}", "HOME=/tmp"]
    command += [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(db)]
    command += ["ingest", "--no-transcribe", "--workers", "1", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_an_unreadable_subfolder_is_reported_and_the_exit_code_says_so(
    shared_folder: Path,
) -> None:
    media = shared_folder / "m"
    (media / "locked").mkdir(parents=True)
    shutil.copy(GOOD, media / "good.mkv")
    shutil.copy(OTHER, media / "locked" / "other.mov")
    (media / "locked").chmod(0o000)
    done = as_unprivileged(shared_folder / "c.db", media)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Ingested 1, skipped 0, failed 0, rejected 1 "), lines
    assert f"  not ingested: {media / 'locked'}: cannot read folder: Permission denied" in lines


def test_a_file_unreadable_for_permissions_is_retried_in_place(shared_folder: Path) -> None:
    media = shared_folder / "m"
    media.mkdir()
    shutil.copy(GOOD, media / "good.mkv")
    (media / "good.mkv").chmod(0o000)
    db = shared_folder / "c.db"
    first = as_unprivileged(db, media)
    assert first.returncode == 1 and "failed: " in first.stdout, first.stdout + first.stderr
    assert "cannot read file: Permission denied" in first.stdout
    again = as_unprivileged(db, media)
    assert again.stdout.startswith("Ingested 0, skipped 1, failed 0 "), again.stdout
    (media / "good.mkv").chmod(0o644)
    retried = as_unprivileged(db, "--retry-failed", media)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried.stdout.startswith("Ingested 1, skipped 0, failed 0 "), retried.stdout
    shown = subprocess.run(
        [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(db), "clips"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    rows = [line for line in shown.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 1 and rows[0].split()[0] == "1" and "FAILED" not in rows[0], shown.stdout
