"""Names, teams, file names and transcripts carrying terminal escapes or newlines.

They come from outside systems and camera files; in every text rendering they must show
as visible escapes, never reach the terminal raw (no retitling, clearing or forged lines).
JSON output keeps the exact values: it has its own escaping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from compliance_helpers import (
    add_assignment,
    add_attendance,
    add_clip,
    add_incident,
    make_engine,
    relink,
)
from sqlmodel import select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import Clip, Officer, TranscriptSegment
from bwv.core.textsafe import printable

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
FORGED = "\nVerdict: COMPLIANT"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    engine = make_engine(tmp_path)
    with session_scope(engine) as session:
        session.add(
            Officer(officer_id="O1", name=f"PC {TITLE}", team=f"Team {CLEAR}", station="C\u202e")
        )
        add_assignment(session, "CAM1", "O1", "2024-01-01T00:00:00")
        add_incident(
            session,
            "INC-1",
            "2024-01-16T09:50:00",
            kind=f"Domestic{CLEAR}",
            notes=f"note{FORGED}",
            location=f"Elm{TITLE}",
        )
        add_attendance(session, "INC-1", "O1", "2024-01-16T10:00:00", "2024-01-16T10:10:00")
        good = add_clip(session, serial="CAM1", start="2024-01-16T10:00:05", child=30.0)
        bad = add_clip(session, serial="CAM1", start="2024-01-16T10:01:00", status="failed")
        for clip_id, reason in ((good, None), (bad, f"moov{CLEAR}{FORGED}")):
            clip = session.get(Clip, clip_id)
            assert clip is not None
            clip.file_name = f"evil{TITLE}{FORGED}\x9b.mp4"
            clip.path = f"/media/{TITLE}.mp4"
            clip.failure_reason = reason or clip.failure_reason
        for segment in session.exec(select(TranscriptSegment)).all():
            segment.text = f"words {CLEAR} said{FORGED}"
    relink(engine)
    return tmp_path / "bwv.db"


def bwv(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args])


@pytest.mark.parametrize(
    "args",
    [
        ["clips"],
        ["show", "1"],
        ["search", "words"],
        ["incident", "INC-1"],
        ["report"],
        ["report", "--by", "team"],
        ["report", "--by", "officer"],
    ],
    ids=lambda args: "-".join(args),
)
def test_text_output_never_carries_raw_control_characters(
    hostile_db: Path, args: list[str]
) -> None:
    result = bwv(hostile_db, *args)
    assert result.exit_code in (0, 1), result.output
    for char in RAW:
        assert char not in result.output, (char, result.output)
    assert not any(line.startswith("Verdict: COMPLIANT") for line in result.output.splitlines())
    assert "\\x1b" in result.output or "\\u202e" in result.output, result.output


def test_json_output_keeps_the_exact_values(hostile_db: Path) -> None:
    rows = json.loads(bwv(hostile_db, "clips", "--json").stdout)
    assert rows[0]["file_name"] == f"evil{TITLE}{FORGED}\x9b.mp4"


def test_import_errors_show_bad_values_escaped(tmp_path: Path) -> None:
    path = tmp_path / "attendance.csv"
    path.write_text(
        "incident_ref,officer_id,arrived_at,left_at\n"
        f'"INC{TITLE}",O1,2024-01-16T10:00:00,2024-01-16T10:10:00\n',
        encoding="utf-8",
    )
    result = bwv(tmp_path / "bwv.db", "import", "attendance", str(path))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "unknown incident INC\\x1b]0;pwned\\x07" in result.stderr


def test_printable_escapes_controls_and_keeps_ordinary_text() -> None:
    assert printable("Zoë O'Brien – PC 42") == "Zoë O'Brien – PC 42"
    assert printable(f"a{TITLE}b\tc\r\n\x7f\u2066") == "a\\x1b]0;pwned\\x07b\\tc\\r\\n\\x7f\\u2066"


def test_ingest_summary_shows_a_hostile_failed_file_name_escaped(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / f"evil{CLEAR}{TITLE}.mp4").write_bytes(b"not a video at all")
    result = bwv(tmp_path / "bwv.db", "ingest", "--workers", "1", "--no-transcribe", str(media))
    assert result.exit_code == 1, result.output
    failed = [line for line in result.stdout.splitlines() if "failed: " in line]
    assert len(failed) == 1 and "evil\\x1b[2J\\x1b]0;pwned\\x07.mp4" in failed[0], result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
