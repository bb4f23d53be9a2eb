"""Every command's standard output can be full or closed: one `Error:` line, never a
traceback (the custody commands are covered in tests/custody/test_harden_cli_output.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from compliance_helpers import add_clip, make_engine, relink, standard_incident

from bwv.core.db import session_scope

ROOT = Path(__file__).resolve().parents[2]

# Slow: a real bwv process per command.
pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path: Path) -> Path:
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        standard_incident(session)
        add_clip(session, serial="CAM1", start="2024-01-16T10:00:30", child=3.0)
    relink(engine)
    return tmp_path / "bwv.db"


@pytest.mark.parametrize(
    "args",
    [
        ("report",),
        ("report", "--format", "json"),
        ("report", "--by", "team"),
        ("clips",),
        ("show", "1", "--json"),
        ("search", "words"),
        ("incident", "INC-1"),
    ],
)
def test_a_full_disk_on_standard_output_is_one_clear_error(db: Path, args: tuple[str, ...]) -> None:
    command = [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(db), *args]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "Error: cannot write the output: No space left on device\n"
