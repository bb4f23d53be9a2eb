"""`bwv export` hardened: no disclosure folder without an audit event, even after SIGKILL.

The export is killed (SIGKILL, through the `BWV_CRASH_POINT` test hook) just before and
just after the rename that puts the folder in place; the next `audit verify` or
`export` must settle it with an audit event. Destinations that cannot be written give
one `Error:` line and an audited refusal, and the printed check command is shell-safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_custody_export import add_incident, sha256sum_check

from bwv.cli import main

ROOT = Path(__file__).resolve().parents[2]
BWV = [sys.executable, "-c", "from bwv.cli import run; run()"]

# Slow: real bwv processes killed mid-export.
pytestmark = pytest.mark.slow


def run(db: Path, *args: str) -> tuple[int, str]:
    """In-process `bwv`; the output holds standard output and error together."""
    result = CliRunner().invoke(main, ["--db", str(db), "--actor", "e", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def events(db: Path) -> list[tuple[int, str, str, dict[str, object]]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT id, action, outcome, details FROM auditevent WHERE action = 'export' "
            "ORDER BY id"
        ).fetchall()
    return [(i, a, o, json.loads(d)) for i, a, o, d in rows]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """One sample clip ingested without transcription, linked to incident INC-2."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(ROOT / "sample_media" / "X60390008_20240116_093000.mp4", media)
    db = tmp_path / "small.db"
    code, output = run(db, "ingest", "--no-transcribe", "--workers", "1", str(media))
    assert code == 0, output
    add_incident(db, [1], ref="INC-2")
    return db


def killed_export(db: Path, to: Path, step: str) -> None:
    """Runs a real `bwv export` that SIGKILLs itself at `step`."""
    result = subprocess.run(
        [*BWV, "--db", str(db), "export", "INC-2", "--to", str(to)],
        env={**os.environ, "BWV_CRASH_POINT": step},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr


def staging_folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if ".partial-" in p.name)


def test_killed_before_the_rename_is_abandoned_by_audit_verify(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "disclosure"
    killed_export(small, out, "export-rename")
    assert not out.exists()
    assert len(staging_folders(tmp_path)) == 1
    (staged_id, _, outcome, details) = events(small)[-1]
    assert outcome == "staged" and details["to"] == str(out.resolve())

    code, output = run(small, "audit", "verify")
    assert code == 0, output
    assert f"warning: the export to {out.resolve()} (audit event {staged_id}) was interrupted" in (
        output
    )
    assert staging_folders(tmp_path) == [] and not out.exists()
    settled = events(small)[-1]
    assert settled[2] == "abandoned" and settled[3]["staged_event"] == staged_id
    with sqlite3.connect(small) as connection:
        exported = connection.execute("SELECT COUNT(*) FROM derivative WHERE kind LIKE 'export_%'")
        assert exported.fetchone() == (0,)
    # Settled once only, and the same folder can be exported afterwards.
    assert run(small, "audit", "verify")[0] == 0
    assert [e[2] for e in events(small)] == ["staged", "abandoned"]
    assert run(small, "export", "INC-2", "--to", str(out))[0] == 0
    assert [e[2] for e in events(small)] == ["staged", "abandoned", "staged", "ok"]


def test_killed_after_the_rename_is_recorded_by_the_next_export(
    small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "disclosure"
    killed_export(small, out, "export-complete")
    # The folder is in place and complete, and an event already names it and its manifest.
    assert sha256sum_check(out).returncode == 0
    assert staging_folders(tmp_path) == []
    (staged_id, _, outcome, details) = events(small)[-1]
    assert outcome == "staged" and details["to"] == str(out.resolve())
    manifest = (out / "MANIFEST.sha256").read_bytes()
    assert details["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()

    code, output = run(small, "export", "INC-2", "--to", str(tmp_path / "second"))
    assert code == 0, output
    assert "note: the export to" in output and f"(audit event {staged_id})" in output
    outcomes = [(e[2], e[3].get("staged_event")) for e in events(small)]
    assert outcomes[:2] == [("staged", None), ("recovered", staged_id)]
    assert sha256sum_check(out).returncode == 0  # settling never touches a finished folder
    with sqlite3.connect(small) as connection:
        paths = connection.execute("SELECT path FROM derivative WHERE kind = 'export_original'")
        assert {Path(p).parent.parent for (p,) in paths} == {out.resolve(), (tmp_path / "second")}
    assert run(small, "audit", "verify")[0] == 0


def test_a_running_export_is_left_alone(small: Path, tmp_path: Path) -> None:
    """A staged export whose process is still alive (here: this test) is not settled."""
    out = tmp_path / "disclosure"
    killed_export(small, out, "export-rename")
    with sqlite3.connect(small) as connection:
        # Rewriting the pid breaks the chain, which is fine here: only settling is tested.
        details = json.loads(
            connection.execute("SELECT details FROM auditevent ORDER BY id DESC").fetchone()[0]
        )
        details["pid"] = os.getpid()
        connection.execute(
            "UPDATE auditevent SET details = ? WHERE id = (SELECT MAX(id) FROM auditevent)",
            (json.dumps(details),),
        )
    run(small, "audit", "verify")
    assert len(staging_folders(tmp_path)) == 1
    assert [e[2] for e in events(small)] == ["staged"]


@pytest.mark.parametrize(
    "where",
    ["long name", "under a file", "in proc"],
)
def test_unwritable_destination_is_one_audited_error(
    small: Path, tmp_path: Path, where: str
) -> None:
    (tmp_path / "plain-file").write_text("x")
    to = {
        "long name": tmp_path / ("x" * 300),
        "under a file": tmp_path / "plain-file" / "export",
        "in proc": Path("/proc/bwv-export-test"),
    }[where]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, output = run(small, "export", "INC-2", "--to", str(to))
    assert code == 2
    assert output.count("\n") == 1 and output.startswith("Error: cannot ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written
    (_, _, outcome, details) = events(small)[-1]
    assert outcome == "refused" and details["to"] == str(to)


def test_longest_allowed_folder_name_exports(small: Path, tmp_path: Path) -> None:
    out = tmp_path / ("y" * 250)
    code, output = run(small, "export", "INC-2", "--to", str(out))
    assert code == 0, output
    assert sha256sum_check(out).returncode == 0


@pytest.mark.parametrize("name", ["with space", "it's", "$HOME", "-dash", "a;b`c`"])
def test_check_hint_is_shell_quoted(small: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    code, output = run(small, "export", "INC-2", "--to", str(out))
    assert code == 0, output
    hint = output.splitlines()[-1].removeprefix("check with: ")
    check = subprocess.run(
        ["sh", "-c", hint],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
    )
    assert check.returncode == 0, hint + check.stdout + check.stderr
    assert check.stdout.count(": OK") == 6
