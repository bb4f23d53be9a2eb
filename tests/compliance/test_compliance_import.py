"""`bwv import`: all-or-nothing files, line numbers, upserts, GMT and BST local times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from compliance_helpers import add_clip, catalogue_arg, utc
from sqlalchemy import Engine, func
from sqlmodel import select

from bwv.cli import main
from bwv.core.db import session_scope
from bwv.core.models import Assignment, Attendance, AuditEvent, ClipLink, Incident, Officer

OFFICERS = "officer_id,name,team,station\nO1,PC One,Team A,Central\nO2,PC Two,Team B,North\n"
INCIDENTS = (
    "incident_ref,type,reported_at,location,child_contact,child_ages,notes\n"
    "INC-1,Domestic abuse,2024-01-16T07:10:00,1 Elm Road,yes,7,winter\n"
    "INC-2,Domestic abuse,2024-07-02T09:20:00,2 Elm Road,No,,summer\n"
)


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWV_ACTOR", "tester")


def run(tmp_path: Path, kind: str, name: str, content: str | bytes) -> Result:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return CliRunner().invoke(main, ["--db", catalogue_arg(tmp_path), "import", kind, str(path)])


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_officers_import_and_reimport_upserts(tmp_path: Path, engine: Engine) -> None:
    first = run(tmp_path, "officers", "officers.csv", OFFICERS)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("Imported 2 officers from ")
    assert "2 new, 0 updated" in first.stdout
    changed = OFFICERS.replace("Team B", "Team C") + "O3,PC Three,Team A,Central\n"
    second = run(tmp_path, "officers", "officers.csv", changed)
    assert second.exit_code == 0 and "1 new, 2 updated" in second.stdout
    assert count(engine, Officer) == 3
    with session_scope(engine) as session:
        assert session.get(Officer, "O2").team == "Team C"  # type: ignore[union-attr]
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "import")).all()
    assert [e.actor for e in events] == ["tester", "tester"]


def test_local_times_follow_gmt_in_winter_and_bst_in_summer(tmp_path: Path, engine: Engine) -> None:
    assert run(tmp_path, "incidents", "incidents.csv", INCIDENTS).exit_code == 0
    with session_scope(engine) as session:
        winter = session.get(Incident, "INC-1")
        summer = session.get(Incident, "INC-2")
    assert winter is not None and summer is not None
    assert winter.reported_at == utc("2024-01-16T07:10:00")  # GMT = UTC
    assert summer.reported_at == utc("2024-07-02T08:20:00")  # BST = UTC+1
    assert (winter.child_contact, winter.child_ages, summer.child_contact) == (True, "7", False)


def test_bst_attendance_links_a_utc_named_clip(tmp_path: Path, engine: Engine) -> None:
    run(tmp_path, "officers", "o.csv", OFFICERS)
    run(tmp_path, "incidents", "i.csv", INCIDENTS)
    run(tmp_path, "assignments", "a.csv", "device_serial,officer_id,issued_at,returned_at\n"
        "CAM1,O1,2024-06-01T00:00:00,\n")  # fmt: skip
    with session_scope(engine) as session:
        clip = add_clip(session, serial="CAM1", start="2024-07-02T08:30:05")
    # 09:29:40 local (BST) is 08:29:40 UTC: 25 s before the clip, well inside the window.
    result = run(tmp_path, "attendance", "att.csv", "incident_ref,officer_id,arrived_at,left_at\n"
                 "INC-2,O1,2024-07-02T09:29:40,2024-07-02T09:31:00\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Links: 1 (1 added, 0 removed)" in result.stdout
    with session_scope(engine) as session:
        [link] = session.exec(select(ClipLink)).all()
    assert (link.clip_id, link.incident_ref) == (clip, "INC-2")


def test_bad_rows_reject_the_whole_file_with_line_numbers(tmp_path: Path, engine: Engine) -> None:
    run(tmp_path, "incidents", "incidents.csv", INCIDENTS)
    content = (
        "incident_ref,officer_id,arrived_at,left_at\n"
        "INC-1,O1,2024-01-16T07:20:00,2024-01-16T07:40:00\n"
        "INC-1,O2,yesterday,2024-01-16T07:40:00\n"
        "INC-1,O3,2024-01-16T07:20:00,2024-01-16T07:40:00\n"
        "INC-1,O4,2024-01-16T07:50:00,2024-01-16T07:40:00\n"
        "INC-9,O5,2024-01-16T07:20:00,2024-01-16T07:40:00\n"
    )
    result = run(tmp_path, "attendance", "attendance.csv", content)
    path = tmp_path / "attendance.csv"
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Error: {path}:3: arrived_at: not an ISO 8601 time: 'yesterday'",
        f"Error: {path}:5: left_at: 2024-01-16T07:40:00Z is before arrived_at",
        f"Error: {path}:6: incident_ref: unknown incident INC-9 (import incidents first)",
        f"Error: 3 problem(s) in {path}; nothing was imported",
    ]
    assert result.stdout == ""
    assert count(engine, Attendance) == 0
    with session_scope(engine) as session:
        outcomes = [e.outcome for e in session.exec(select(AuditEvent))]
    assert outcomes == ["ok", "rejected"]


def test_problem_list_is_capped(tmp_path: Path, engine: Engine) -> None:
    rows = "".join(f"O{n},,Team,Station\n" for n in range(25))
    result = run(tmp_path, "officers", "officers.csv", "officer_id,name,team,station\n" + rows)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2
    assert len(lines) == 22
    assert lines[0].endswith("officers.csv:2: name: missing value")
    assert lines[-2] == "Error: ... and 5 more"
    assert lines[-1].endswith(
        "25 problem(s) in " + str(tmp_path / "officers.csv") + "; nothing was imported"
    )
    assert count(engine, Officer) == 0


def test_overlapping_assignments_in_the_file_and_with_stored_ones(
    tmp_path: Path, engine: Engine
) -> None:
    header = "device_serial,officer_id,issued_at,returned_at\n"
    clash = (
        header
        + "CAM1,O1,2024-01-01T08:00:00Z,2024-01-10T08:00:00Z\n"
        + ("CAM1,O2,2024-01-05T08:00:00Z,\n")
    )
    result = run(tmp_path, "assignments", "a.csv", clash)
    assert result.exit_code == 2
    assert (
        ":3: issued_at: camera CAM1 is already assigned to O1 from 2024-01-01T08:00:00Z "
        in result.stderr
    )
    assert "(line 2)" in result.stderr
    assert count(engine, Assignment) == 0
    assert (
        run(tmp_path, "assignments", "b.csv", header + "CAM1,O1,2024-01-01T08:00:00Z,\n").exit_code
        == 0
    )
    later = run(tmp_path, "assignments", "c.csv", header + "CAM1,O2,2024-02-01T08:00:00Z,\n")
    assert later.exit_code == 2
    assert "c.csv:2: issued_at: camera CAM1 is already assigned to O1" in later.stderr
    assert "until never (already imported)" in later.stderr
    # Returning the first camera (same key, so an update) makes room for the second.
    fixed = (
        header
        + "CAM1,O1,2024-01-01T08:00:00Z,2024-01-31T08:00:00Z\nCAM1,O2,2024-02-01T08:00:00Z,\n"
    )
    assert run(tmp_path, "assignments", "d.csv", fixed).exit_code == 0
    assert count(engine, Assignment) == 2


def test_duplicate_keys_missing_columns_and_bad_values(tmp_path: Path, engine: Engine) -> None:
    duplicate = run(tmp_path, "officers", "dup.csv", OFFICERS + "O1,PC Again,Team A,Central\n")
    assert "dup.csv:4: officer_id: duplicate officer_id O1 (first on line 2)" in duplicate.stderr
    missing = run(tmp_path, "officers", "missing.csv", "officer_id,name,team\nO1,PC One,A\n")
    assert "missing.csv:1: station: column missing from the header" in missing.stderr
    short = run(tmp_path, "officers", "short.csv", "officer_id,name,team,station\nO1,PC One\n")
    assert "short.csv:2: team: missing (the row has fewer fields than the header)" in short.stderr
    bad = run(tmp_path, "incidents", "bad.csv", INCIDENTS.replace(",yes,7,", ",maybe,seven,"))
    assert "bad.csv:2: child_contact: expected yes or no" in bad.stderr
    assert "bad.csv:2: child_ages: 'seven' is not an age from 0 to 17" in bad.stderr
    assert count(engine, Officer) == 0 and count(engine, Incident) == 0


def test_very_long_field_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, "officers", "long.csv", OFFICERS.replace("PC One", "x" * 500))
    assert result.exit_code == 2
    assert "long.csv:2: name: too long (500 characters; at most 200)" in result.stderr


def test_encoding_errors_and_bom(tmp_path: Path, engine: Engine) -> None:
    latin = run(
        tmp_path, "officers", "latin.csv", OFFICERS.replace("PC Two", "PC Zoë").encode("latin-1")
    )
    assert latin.exit_code == 2
    assert "latin.csv:3: not UTF-8 text (byte 0xeb); save the file as UTF-8" in latin.stderr
    assert "Traceback" not in latin.output
    bom = run(tmp_path, "officers", "bom.csv", b"\xef\xbb\xbf" + OFFICERS.encode())
    assert bom.exit_code == 0, bom.output
    assert count(engine, Officer) == 2


def test_json_array_import_with_line_numbers(tmp_path: Path, engine: Engine) -> None:
    rows = [
        {"officer_id": "O1", "name": "PC One", "team": "A", "station": "Central"},
        {"officer_id": "O2", "name": "PC Two", "team": "B", "station": "North"},
    ]
    good = run(tmp_path, "officers", "officers.json", json.dumps(rows, indent=2))
    assert good.exit_code == 0, good.output
    rows[1]["name"] = ""
    bad = run(tmp_path, "officers", "bad.json", json.dumps(rows, indent=2))
    assert "bad.json:8: name: missing value" in bad.stderr
    broken = run(tmp_path, "officers", "broken.json", '[{"officer_id": "O1",}]')
    assert broken.exit_code == 2 and "broken.json:1: invalid JSON" in broken.stderr
    assert count(engine, Officer) == 2


def test_missing_or_empty_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--db", catalogue_arg(tmp_path), "import", "officers", str(tmp_path / "nope.csv")]
    )
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope.csv'}: file does not exist\n"
    empty = run(tmp_path, "officers", "empty.csv", "")
    assert empty.stderr.endswith("empty.csv: the file is empty; expected a header row\n")


def test_line_numbers_count_quoted_newlines(tmp_path: Path, engine: Engine) -> None:
    content = (
        "incident_ref,type,reported_at,location,child_contact,child_ages,notes\n"
        'INC-1,Domestic abuse,2024-01-16T07:10:00,x,yes,7,"first line\nsecond line"\n'
        "INC-2,Domestic abuse,2024-01-16T07:10:00,x,perhaps,7,\n"
    )
    result = run(tmp_path, "incidents", "multi.csv", content)
    assert "multi.csv:4: child_contact: expected yes or no" in result.stderr
    fixed = run(tmp_path, "incidents", "multi.csv", content.replace("perhaps", "n"))
    assert fixed.exit_code == 0
    with session_scope(engine) as session:
        assert session.get(Incident, "INC-1").notes == "first line\nsecond line"  # type: ignore[union-attr]


def test_repeated_columns_and_json_keys_are_refused(tmp_path: Path, engine: Engine) -> None:
    twice = run(
        tmp_path, "officers", "twice.csv", "officer_id,name,team,station,Name\nO1,a,b,c,d\n"
    )
    assert twice.exit_code == 2
    assert "twice.csv:1: name: column appears more than once in the header (columns 2 and 5)" in (
        twice.stderr
    )
    doubled = (
        '[\n  {"officer_id": "O1", "officer_id": "O2", "name": "A", "team": "T", "station": "S"}\n]'
    )
    result = run(tmp_path, "officers", "doubled.json", doubled)
    assert "doubled.json:2: officer_id: appears more than once in this object" in result.stderr
    assert count(engine, Officer) == 0
