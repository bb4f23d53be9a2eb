"""Custody commands fail cleanly: a bad `--anchor`, an unwritable standard output.

The output cases run the real `bwv` in a subprocess, because only there does standard
output really hit a full disk (/dev/full) and would Python print a traceback at exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main

BWV = [sys.executable, "-c", "from bwv.cli import run; run()"]

# Slow: real bwv processes over ingested media.
pytestmark = pytest.mark.slow


def bwv(db: Path, *args: str, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BWV, "--db", str(db), "--actor", "custodian", *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A catalogue with a few audit events (each `audit verify` appends one)."""
    path = tmp_path / "bwv.db"
    for _ in range(3):
        assert bwv(path, "audit", "verify").returncode == 0
    return path


@pytest.mark.parametrize(
    "anchor",
    ["abc", "g" * 64, "a" * 63, "a" * 65, "", "a" * 64 + "\n--", "x" * 5000, "' OR 1=1 --"],
)
def test_anchor_must_be_a_sha256_hash(db: Path, anchor: str) -> None:
    result = CliRunner().invoke(main, ["--db", str(db), "audit", "verify", "--anchor", anchor])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: --anchor must be a SHA-256 hash (64 hex digits), not ")
    assert len(lines[0]) < 200


def test_upper_case_anchor_is_the_same_hash(db: Path) -> None:
    head = bwv(db, "audit", "verify").stdout.split()[-1]
    result = bwv(db, "audit", "verify", "--anchor", head.upper())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("audit chain intact")


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "log"),
        ("audit", "verify", "--json"),
        ("verify", "--all"),
    ],
)
def test_full_disk_on_standard_output_is_one_clear_error(db: Path, args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        result = bwv(db, *args, stdout=full)
    assert result.returncode == 2
    assert result.stderr == "Error: cannot write the output: No space left on device\n"
