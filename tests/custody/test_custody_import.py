"""Import hardening, through `bwv import`: hostile or broken files fail clearly and whole.

Rosters and incident logs come from other systems and spreadsheets: wrong encodings,
byte-order marks, missing columns, duplicate keys, huge fields and formula payloads
(`=cmd|' /C calc'!A0`). Each must give a clear `FILE:LINE` error with nothing written,
and text that is stored verbatim must never come back out as a live spreadsheet
formula or as markup in a report.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bwv.cli import main

PAYLOAD = "=cmd|' /C calc'!A0"
# Written out here, not imported: the test must not share the code's list. Spreadsheets
# also evaluate the full-width forms.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
HEADER = "officer_id,name,team,station\n"


def run(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "admin", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def officers(db: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT * FROM officer ORDER BY officer_id").fetchall()


def last_import(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as connection:
        query = "SELECT action, outcome FROM auditevent ORDER BY id DESC LIMIT 1"
        return connection.execute(query).fetchone()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bwv.db"


def test_latin1_file_is_refused_with_the_line(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", HEADER.encode() + "O1,Zoé,A,B\n".encode("latin-1"))
    code, output = run(db, "import", "officers", str(path))
    assert code == 2
    assert output == (
        f"Error: {path}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8 (CSV UTF-8) "
        "and import again\n"
    )
    assert officers(db) == []


def test_utf16_file_is_refused(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", (HEADER + "O1,Zoe,A,B\n").encode("utf-16"))
    code, output = run(db, "import", "officers", str(path))
    assert (code, output) == (
        2,
        f"Error: {path}: is UTF-16 text; save it as UTF-8 (CSV UTF-8) and import again\n",
    )


def test_byte_order_mark_is_accepted_in_csv_and_json(db: Path, tmp_path: Path) -> None:
    csv_path = write(tmp_path / "o.csv", "\ufeff" + HEADER + "O1,Zoë Hart,A,B\n")
    json_path = write(
        tmp_path / "o.json",
        '\ufeff[{"officer_id": "O2", "name": "Ann", "team": "A", "station": "B"}]',
    )
    assert run(db, "import", "officers", str(csv_path))[0] == 0
    assert run(db, "import", "officers", str(json_path))[0] == 0
    assert officers(db) == [("O1", "Zoë Hart", "A", "B"), ("O2", "Ann", "A", "B")]


def test_missing_column_names_it_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "officer_id,name,station\nO1,Zoe,B\n")
    code, output = run(db, "import", "officers", str(path))
    assert (code, output) == (
        2,
        f"Error: {path}:1: team: column missing from the header "
        "(expected officer_id,name,team,station)\n"
        f"Error: 1 problem(s) in {path}; nothing was imported\n",
    )
    assert officers(db) == []
    assert last_import(db) == ("import", "rejected")


def test_one_bad_row_rejects_the_whole_file(db: Path, tmp_path: Path) -> None:
    rows = "".join(f"O{i},Name {i},A,B\n" for i in range(1, 50)) + "O50,,A,B\n"
    path = write(tmp_path / "o.csv", HEADER + rows)
    code, output = run(db, "import", "officers", str(path))
    assert code == 2
    assert output.startswith(f"Error: {path}:51: name: ")
    assert officers(db) == []


def test_duplicate_keys_name_both_lines(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", HEADER + "O3,Zoe,A,B\nO3,Zed,A,B\n")
    code, output = run(db, "import", "officers", str(path))
    assert (code, output) == (
        2,
        f"Error: {path}:3: officer_id: duplicate officer_id O3 (first on line 2)\n"
        f"Error: 1 problem(s) in {path}; nothing was imported\n",
    )
    assert officers(db) == []


def test_long_fields_are_refused_not_truncated(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", HEADER + f"O4,{'x' * 201},A,B\n")
    assert run(db, "import", "officers", str(path)) == (
        2,
        f"Error: {path}:2: name: too long (201 characters; at most 200)\n"
        f"Error: 1 problem(s) in {path}; nothing was imported\n",
    )


def test_huge_fields_fail_cleanly(db: Path, tmp_path: Path) -> None:
    csv_path = write(tmp_path / "o.csv", HEADER + f"O5,{'x' * 200_000},A,B\n")
    code, output = run(db, "import", "officers", str(csv_path))
    assert code == 2 and f"{csv_path}:2: unreadable CSV: field larger than field limit" in output
    big = [{"officer_id": "O6", "name": "x" * 5_000_000, "team": "A", "station": "B"}]
    json_path = write(tmp_path / "o.json", json.dumps(big))
    code, output = run(db, "import", "officers", str(json_path))
    assert code == 2 and "name: too long (5000000 characters; at most 200)" in output
    assert officers(db) == []


def test_nul_bytes_and_ragged_rows_are_refused(db: Path, tmp_path: Path) -> None:
    nul = write(tmp_path / "nul.csv", HEADER + "O6,Zo\x00e,A,B\n")
    assert run(db, "import", "officers", str(nul))[1].startswith(
        f"Error: {nul}:2: name: contains a NUL character"
    )
    extra = write(tmp_path / "extra.csv", HEADER + "O7,Zoe,A,B,surplus\n")
    assert run(db, "import", "officers", str(extra))[1].startswith(
        f"Error: {extra}:2: row has 5 fields, header 4"
    )
    assert officers(db) == []


def test_truncated_json_is_refused(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.json", '[{"officer_id": "J4", "name": "A", "team": "T", ')
    code, output = run(db, "import", "officers", str(path))
    assert code == 2 and output.startswith(f"Error: {path}:1: invalid JSON")


def test_duplicate_column_names_are_refused(db: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "officer_id,officer_id,name,team,station\nO9,O10,Zoe,A,B\n")
    code, _ = run(db, "import", "officers", str(path))
    assert code == 2
    assert officers(db) == []


def test_duplicate_json_keys_are_refused(db: Path, tmp_path: Path) -> None:
    path = write(
        tmp_path / "o.json",
        '[{"officer_id": "J2", "officer_id": "J3", "name": "A", "team": "T", "station": "S"}]',
    )
    code, _ = run(db, "import", "officers", str(path))
    assert code == 2
    assert officers(db) == []


@pytest.fixture
def hostile(db: Path, tmp_path: Path) -> Path:
    """A catalogue whose officers, incidents and attendance carry formula and markup payloads."""
    files = {
        "officers": HEADER + f'"{PAYLOAD}","{PAYLOAD}",+SUM(1;2),@station\n',
        "incidents": "incident_ref,type,reported_at,location,child_contact,child_ages,notes\n"
        f'INC-X1,"{PAYLOAD}",2024-01-16T07:10:00,-2+3,yes,7,"<script>alert(1)</script>"\n'
        f'INC-X2,Domestic,2024-01-16T08:10:00,@SUM(A1),yes,7,"\n{PAYLOAD}"\n'
        "INC-X3,\uff20SUM(A1),2024-01-16T09:10:00,\uff1dHYPERLINK(1),yes,7,\uff0b1\n",
        "attendance": "incident_ref,officer_id,arrived_at,left_at\n"
        f'INC-X1,"{PAYLOAD}",2024-01-16T07:10:00,2024-01-16T07:30:00\n',
    }
    for kind, text in files.items():
        code, output = run(db, "import", kind, str(write(tmp_path / f"{kind}.csv", text)))
        assert code == 0, output
    return db


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_payloads_are_stored_verbatim(hostile: Path) -> None:
    assert officers(hostile) == [(PAYLOAD, PAYLOAD, "+SUM(1;2)", "@station")]


@pytest.mark.parametrize("by", [None, "officer", "team", "station", "type"])
def test_csv_reports_never_emit_a_live_formula(hostile: Path, by: str | None) -> None:
    args = ["report", "--format", "csv", *(["--by", by] if by else [])]
    code, output = run(hostile, *args)
    assert code in (0, 1)
    assert not [c for c in cells(output) if c.startswith(FORMULA_STARTS)]
    if by in (None, "officer", "type"):
        assert any(c.startswith("'" + PAYLOAD) for c in cells(output))


def test_html_report_escapes_catalogue_text(hostile: Path) -> None:
    code, output = run(hostile, "report", "--format", "html")
    assert code in (0, 1)
    assert "<script>alert(1)</script>" not in output
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in output


def test_audit_log_csv_never_emits_a_live_formula(hostile: Path) -> None:
    run(hostile, "--actor", PAYLOAD, "audit", "verify")
    code, output = run(hostile, "audit", "log", "--format", "csv")
    assert code == 0
    assert not [c for c in cells(output) if c.startswith(FORMULA_STARTS)]
